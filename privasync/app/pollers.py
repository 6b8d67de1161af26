"""What the scheduler runs on a timer, each given only what it uses (the connectors' own,
the Salesforce poller say, come with their plug-ins): a mailing list's directory refresh,
and the watch over requests (processors late with their acknowledgement are escalated
once each: a log event without personal data, a ledger entry, the metric and ``requests
list --overdue`` show them until they answer; a request whose destinations all ended
without anyone finishing it is handed back to be finished; expired exports are deleted)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import structlog
from sqlalchemy.engine import Engine

from core import directory, ledger
from core import subject_requests as rq
from core.crypto import Keyring
from core.fulfil import hand_back
from core.ports import Directory

# How long every destination must have stood still before a request nobody finished is
# handed back: the usual finish takes well under a second.
STALLED_AFTER = timedelta(seconds=10)

log = structlog.get_logger("privasync.requests")

Poll = Callable[[datetime], int]


def directory_refresher(engine: Engine, keyring: Keyring, system: str,
                        source: Directory) -> Poll:
    """Read ``system``'s list in bulk (a call per page, not per person) into the directory."""

    def refresh(now: datetime) -> int:
        return directory.refresh(engine, keyring, system, source.addresses(), now,
                                 kept=source.kept())

    return refresh


def requests_watch(engine: Engine, keyring: Keyring, wake: Callable[[], None]) -> Poll:
    def watch(now: datetime) -> int:
        with engine.begin() as conn:
            late = rq.acks_due(conn, now)
            rq.escalate(conn, late, now)
            found = rq.many(conn, {r for r, _ in late})
            for request_id, destination in late:
                request = found[request_id]
                ledger.append(conn, at=now, kind="request.ack_overdue",
                              subject_id=request.subject_id, sealed=False,
                              detail={"request": request_id, "destination": destination})
            stalled = rq.stalled(conn, now, STALLED_AFTER)
            hand_back(conn, keyring, now, stalled)
            rq.prune_exports(conn, now)
        for request_id, destination in late:
            log.warning("request.ack_overdue", request=request_id, destination=destination)
        for request_id in stalled:
            log.info("request.handed_back", request=request_id)
        if stalled:
            wake()
        return len(late) + len(stalled)

    return watch
