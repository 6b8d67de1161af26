"""Mailchimp calls per withdrawal for people who are not on the audience.

N people withdraw a purpose on a web form (stored in the inbox at once, as the backlog
benchmark does); none of them is on the Mailchimp audience, which holds ``--members``
others, read into the directory first (or, ``--no-directory``, never read). With
``--rounds 2`` the same people then withdraw a second purpose. The whole product runs in
this process (SQLite, the in-process broker, the emulators on loopback); it counts what
the Mailchimp emulator was asked while privasync delivered those withdrawals to it.

    python -m bench.mailchimp_unknown --people 1000
    python -m bench.mailchimp_unknown --people 1000 --no-directory --rounds 2
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import func, select

from connectors.mailchimp.plugin import MailchimpSettings
from core import codec, directory, inbox
from core.db import jobs
from core.model import (
    Channel,
    ConsentChange,
    ConsentChanged,
    ConsentStatus,
    EventMeta,
    SubjectHint,
)
from privasync.app.bootstrap import Container
from privasync.demo.stack import WEBHOOK_TOKEN, Emulators, start_stack

MAPPINGS = Path(__file__).parents[1] / "mappings"


def _done(engine: object, people: int) -> bool:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        counts = dict(conn.execute(select(jobs.c.status, func.count()).where(
            jobs.c.destination == "mailchimp").group_by(jobs.c.status)).all())
    return sum(counts.values()) >= people and not counts.get("pending") \
        and not counts.get("running")


def _withdraw(container: Container, people: int, purpose: str, timeout: float) -> None:
    """``people`` strangers withdraw ``purpose``; returns once Mailchimp's jobs are done."""
    now = datetime.now(UTC)
    withdrawn = (ConsentChange(purpose, Channel.EMAIL, ConsentStatus.WITHDRAWN),)
    events = [ConsentChanged(EventMeta("web_form", f"unknown-{purpose}-{n}", now),
                             SubjectHint(email=f"stranger{n}@example.org"), withdrawn)
              for n in range(people)]
    body = codec.encode(events)
    keyring = container.keyring
    with container.engine.begin() as conn:
        before = conn.execute(select(func.count()).select_from(jobs).where(
            jobs.c.destination == "mailchimp")).scalar_one()
        inbox.store(conn, source="web_form", sealed=keyring.seal(body),
                    key=keyring.delivery_key(body), received_at=now, events=len(events))
    container.wake()
    started = time.monotonic()
    while not _done(container.engine, before + people):
        if time.monotonic() - started > timeout:
            raise SystemExit("the withdrawals did not reach Mailchimp in time")
        time.sleep(0.2)


class _Started(Emulators):
    """Emulators started before the stack, so that its settings can name their URLs."""

    def start(self) -> Emulators:
        return self


def run(people: int, members: int, refresh: bool, rounds: int,
        timeout: float) -> dict[str, object]:
    emulators = _Started()
    Emulators.start(emulators)
    # Without a directory, the scheduler never reads the audience (refresh period 0).
    overrides = {} if refresh else {"mailchimp": MailchimpSettings(
        base_url=f"{emulators.mailchimp.url}/3.0", list_id=emulators.mailchimp.list_id,
        api_key=SecretStr(emulators.mailchimp.api_key),
        webhook_token=SecretStr(WEBHOOK_TOKEN), directory_refresh_seconds=0)}
    with tempfile.TemporaryDirectory() as tmp:
        stack = start_stack(database_url=f"sqlite:///{tmp}/privasync.db", var_dir=Path(tmp),
                            mappings_dir=MAPPINGS, poll_seconds=0.3, worker_threads=2,
                            emulators=emulators, overrides=overrides)
        try:
            container, mc = stack.container, stack.emulators.mailchimp
            for i in range(members):
                mc.add_member(f"member{i}@example.org")
            if refresh:
                connector = container.connector("mailchimp")
                directory.refresh(container.engine, container.keyring, "mailchimp",
                                  connector.addresses(), datetime.now(UTC),
                                  kept=connector.kept())
            with mc.lock:
                mc.calls.clear()
            started = time.monotonic()
            # Each round withdraws another purpose, so each reaches Mailchimp again.
            for purpose in ("offers", "product_news")[:rounds]:
                _withdraw(container, people, purpose, timeout)
            wall = time.monotonic() - started
            with mc.lock:
                calls = Counter(mc.calls)
        finally:
            stack.stop()
    people *= rounds
    member_path = f"/3.0/lists/{mc.list_id}/members/"
    by_kind = {
        "per-address GET": sum(n for k, n in calls.items()
                               if k.startswith(f"GET {member_path}")),
        "members list GET": calls.get(f"GET /3.0/lists/{mc.list_id}/members", 0),
        "batch POST": calls.get(f"POST /3.0/lists/{mc.list_id}", 0),
    }
    total = sum(calls.values())
    return {"withdrawals": people, "audience": members, "directory_read": refresh,
            "calls": total, "calls_per_withdrawal": round(total / people, 4), **by_kind,
            "other": total - sum(by_kind.values()), "wall_seconds": round(wall, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--people", type=int, default=1000)
    p.add_argument("--members", type=int, default=200)
    p.add_argument("--no-directory", action="store_true",
                   help="do not read the audience into the directory first")
    p.add_argument("--rounds", type=int, choices=(1, 2), default=1,
                   help="2: the same people withdraw a second purpose afterwards")
    p.add_argument("--timeout", type=float, default=300.0)
    args = p.parse_args()
    print(json.dumps(run(args.people, args.members, not args.no_directory, args.rounds,  # noqa: T201
                         args.timeout)))


if __name__ == "__main__":
    main()
