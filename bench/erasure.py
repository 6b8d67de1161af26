"""Measurement 4: a batch of erasures, from the admin API to every system, the partner's
signed acknowledgement and the person's confirmation mail, against the emulators' rate
limits (HubSpot: 100 calls per rolling 10 s; Salesforce: 25 concurrent calls).

N people are seeded in every emulator as for the burst (bench/burst.py), privasync
learns them (Salesforce poll, Mailchimp audience read, HubSpot ids). Then customer
service records N erasure requests over ``POST /api/v1/requests`` (8 client threads,
a ``requests:write`` token) and the bench waits until every request is completed:
erased and verified in HubSpot, Salesforce and Mailchimp, acknowledged by the partner
(the emulator acks each 0.2 s after it is asked), the person told by mail through an
SMTP relay on loopback, the subject key destroyed.
"""

from __future__ import annotations

import socket
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import requests
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from bench import backends, deploy, stats
from bench.burst import VENDORS, CountingSalesforce, _wait, learn, seed_vendors
from core.crypto import Keyring
from core.db import make_engine
from core.db import requests as request_rows
from privasync.demo.stack import Emulators


class Mailbox:
    """Counts the notices the relay accepts (their recipients only)."""

    def __init__(self) -> None:
        self.recipients: list[str] = []

    async def handle_DATA(self, server: Any, session: Session,  # noqa: N802 - aiosmtpd's name
                          envelope: Envelope) -> str:
        self.recipients += list(envelope.rcpt_tos)
        return "250 OK"


class _Relay(Controller):
    def __init__(self, mailbox: Mailbox) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        super().__init__(mailbox, hostname="127.0.0.1", port=self._sock.getsockname()[1])

    def _create_server(self) -> Any:
        return self.loop.create_server(self._factory_invoker, sock=self._sock)


def smtp_settings(port: int) -> dict[str, str]:
    """privasync's settings for mailing confirmations through the relay on ``port``."""
    return {"PRIVASYNC_SMTP__HOST": "127.0.0.1", "PRIVASYNC_SMTP__PORT": str(port),
            "PRIVASYNC_SMTP__FROM": "privacy@example.com", "PRIVASYNC_SMTP__STARTTLS": "false"}


def _token(database: str) -> str:
    from core import tokens

    engine = make_engine(database)
    try:
        with engine.begin() as conn:
            return tokens.create(conn, Keyring(deploy.SECRET_KEY.encode()), "bench-desk",
                                 ["requests:write", "requests:read"], datetime.now(UTC),
                                 actor="cli")
    finally:
        engine.dispose()


def _ask(url: str, token: str, addresses: list[str]) -> list[tuple[int, float]]:
    """POST one erasure per address; (status, seconds) of each answer."""
    out: list[tuple[int, float]] = []
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {token}"
        for address in addresses:
            started = time.perf_counter()
            answer = session.post(f"{url}/api/v1/requests", timeout=30,
                                  json={"kind": "erasure", "email": address,
                                        "identity": "verified"})
            out.append((answer.status_code, time.perf_counter() - started))
    return out


def _progress(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(select(request_rows.c.status, func.count())
                                 .where(request_rows.c.kind == "erasure")
                                 .group_by(request_rows.c.status)).all())


def _durations(engine: Engine) -> list[float]:
    with engine.connect() as conn:
        rows = conn.execute(select(request_rows.c.received_at, request_rows.c.completed_at)
                            .where(request_rows.c.kind == "erasure",
                                   request_rows.c.completed_at.is_not(None))).all()
    return [(done - received).total_seconds() for received, done in rows]


def _gone(emu: Emulators, people: int) -> dict[str, int]:
    """People still findable in each system after the run (all zero when erasure worked)."""
    addresses = [backends.email(i) for i in range(people)]
    return {"hubspot": sum(emu.hubspot.find_by_email(a) is not None for a in addresses),
            "salesforce": sum(bool(emu.salesforce.find_by_email(a)) for a in addresses),
            "mailchimp": sum(emu.mailchimp.member(a) is not None for a in addresses),
            "partner_pending": emu.partner.erasures_open()}


def run(backend: str, services: backends.Services, *, people: int, poll_seconds: float,
        worker_threads: int, timeout: float) -> dict[str, Any]:
    emu = Emulators(salesforce=CountingSalesforce()).start()
    mailbox = Mailbox()
    relay = _Relay(mailbox)
    relay.start()
    try:
        return _run(backend, services, emu, mailbox, relay.port, people=people,
                    poll_seconds=poll_seconds, worker_threads=worker_threads, timeout=timeout)
    finally:
        relay.stop()
        emu.stop()


def _run(backend: str, services: backends.Services, emu: Emulators, mailbox: Mailbox,
         smtp_port: int, *, people: int, poll_seconds: float, worker_threads: int,
         timeout: float) -> dict[str, Any]:
    contacts, _ = seed_vendors(emu, people)
    with deploy.running(backend, services, emu, poll_seconds=poll_seconds,
                        extra=smtp_settings(smtp_port),
                        worker_threads=worker_threads) as deployment:
        emu.partner.ack_url = f"{deployment.url}/webhooks/partners/contact_centre/ack"
        engine = make_engine(deployment.database_url)
        deadline = time.monotonic() + timeout
        quiet = learn(engine, deployment.database_url, contacts, deadline)
        token = _token(deployment.database_url)
        before = {name: stats.calls(getattr(emu, name)) for name in VENDORS}
        with emu.hubspot.lock:
            statuses_before = Counter(str(s) for _, _, s in emu.hubspot.log)
        started = time.monotonic()
        addresses = [backends.email(i) for i in range(people)]
        with ThreadPoolExecutor(8) as pool:
            answers = [a for part in pool.map(
                lambda k: _ask(deployment.url, token, addresses[k::8]), range(8))
                for a in part]
        recorded = time.monotonic() - started
        _wait("every erasure completed",
              lambda: _progress(engine).get("completed", 0) >= people, deadline)
        wall = time.monotonic() - started
        progress = _progress(engine)
        durations = _durations(engine)
        memory = deployment.peak_memory_mb()
        engine.dispose()
    after = {name: stats.calls(getattr(emu, name)) for name in VENDORS}
    with emu.hubspot.lock:
        statuses = Counter(str(s) for _, _, s in emu.hubspot.log) - statuses_before
    completed = progress.get("completed", 0)
    calls = {}
    for name in VENDORS:
        delta = after[name] - before[name]
        polling = sum(n for k, n in delta.items() if k.endswith(("/updated/", "/deleted/")))
        total = sum(delta.values()) - polling
        calls[name] = {"calls": total, "per_erasure": round(total / max(completed, 1), 3),
                       "by_endpoint": dict(sorted(delta.items()))}
    return {
        "people": people, "before": quiet, "requests": dict(progress),
        "answers": dict(Counter(str(s) for s, _ in answers)),
        "answer_latency": stats.summary_ms([t for _, t in answers]),
        "recorded_seconds": round(recorded, 2), "wall_seconds": round(wall, 2),
        "erasures_per_minute": round(completed / max(wall, 1e-9) * 60, 1),
        "request_to_completed": stats.summary_ms(durations),
        "confirmations_mailed": len(mailbox.recipients),
        "still_held": _gone(emu, people),
        "hubspot_429": statuses.get("429", 0),
        "api_calls": calls, "peak_memory_mb": memory,
    }
