"""``python -m bench.micro``: the two hot paths measured alone, in one process.

1. Applying: HubSpot-style opt-outs (two purposes, three destinations) for people
   privasync already knows, stored in the inbox 100 events a row as webhook
   batches arrive, then applied by the applier; events/s and SQL statements per
   event, SQLite and PostgreSQL side by side.
2. Minimisation: decisions per second on one core for a 9-field record and a
   subject with consent on two purposes, against each destination.

Prints a table and writes JSON to var/bench/micro.json.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, text

from core import codec, inbox
from core.applier import Applier
from core.crypto import Keyring
from core.db import make_engine
from core.mappings import load_mappings
from core.minimise import SubjectContext, minimise
from core.model import (
    Channel,
    ConsentChange,
    ConsentChanged,
    ConsentState,
    ConsentStatus,
    EventMeta,
    Evidence,
    FieldValue,
    SubjectHint,
    SubjectSeen,
    SystemRef,
)
from core.routes import Routes
from core.schema import upgrade
from privasync.app.taxonomy import data_categories

MAPPINGS = Path(__file__).parents[1] / "mappings"
VAR = Path("var/bench")
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432"


def _database(kind: str) -> str:
    if kind == "sqlite":
        path = VAR / "micro.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    admin = make_engine(f"{POSTGRES}/postgres")
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text('DROP DATABASE IF EXISTS "privasync_micro" WITH (FORCE)'))
        conn.execute(text('CREATE DATABASE "privasync_micro"'))
    admin.dispose()
    return f"{POSTGRES}/privasync_micro"


def _ref(i: int) -> SystemRef:
    return SystemRef("hubspot", f"contact:{i}")


def applying(kind: str, people: int, batch: int) -> dict[str, Any]:
    engine = make_engine(_database(kind))
    upgrade(engine)
    mappings = load_mappings(MAPPINGS, data_categories())
    keyring = Keyring(b"micro-bench-secret-0123456789", [b"micro-bench-kek-0123456789abcdef"])
    applier = Applier(engine, keyring, mappings,
                      Routes.from_mappings(mappings, ["hubspot", "salesforce", "mailchimp"]),
                      clock=lambda: datetime.now(UTC), holder="applier:bench")
    start = datetime(2026, 11, 1, tzinfo=UTC)

    def store(events: list[Any]) -> None:
        body = codec.encode(events)
        with engine.begin() as conn:
            inbox.store(conn, source="bench", sealed=keyring.seal(body),
                        key=keyring.delivery_key(body), received_at=datetime.now(UTC),
                        events=len(events))

    def apply_all() -> int:
        ticks = 0
        while (report := applier.tick()) is not None and report.rows:
            ticks += 1
        return ticks

    for lo in range(0, people, batch):
        store([SubjectSeen(EventMeta("hubspot", f"seen-{i}", start),
                           SubjectHint(_ref(i), f"person{i}@example.com"))
               for i in range(lo, min(people, lo + batch))])
    apply_all()
    changes = tuple(ConsentChange(p, Channel.EMAIL, ConsentStatus.WITHDRAWN)
                    for p in ("product_news", "offers"))
    when = start + timedelta(minutes=1)
    for lo in range(0, people, batch):
        store([ConsentChanged(EventMeta("hubspot", f"optout-{i}", when), SubjectHint(_ref(i)),
                              changes) for i in range(lo, min(people, lo + batch))])
    statements = 0

    def count(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        nonlocal statements
        statements += statement.split()[0] not in ("BEGIN", "COMMIT")

    event.listen(engine, "before_cursor_execute", count)
    began = time.perf_counter()
    ticks = apply_all()
    seconds = time.perf_counter() - began
    event.remove(engine, "before_cursor_execute", count)
    engine.dispose()
    return {"backend": kind, "events": people, "ticks": ticks, "seconds": round(seconds, 2),
            "events_per_second": round(people / seconds, 1),
            "statements_per_event": round(statements / people, 3),
            "statements_per_100_events": round(statements / people * 100, 1)}


def decisions(seconds: float) -> dict[str, Any]:
    mappings = load_mappings(MAPPINGS, data_categories())
    now = datetime(2026, 11, 22, tzinfo=UTC)
    record = {name: FieldValue("value", now - timedelta(days=3)) for name in mappings.fields}
    evidence = Evidence("web", "double_opt_in", "v3", "proof")
    subject = SubjectContext({(p, Channel.EMAIL): ConsentState(
        p, Channel.EMAIL, ConsentStatus.GRANTED, now, "web", evidence)
        for p in ("product_news", "service")}, is_customer=True)
    targets = [mappings.destination_purposes(d) for d in (
        "hubspot", "salesforce", "mailchimp", "partner:contact_centre")]
    done, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        for purposes in targets:
            minimise(record, subject, purposes, mappings, now)
        done += len(targets)
    elapsed = time.perf_counter() - began
    return {"records_per_second": round(done / elapsed),
            "field_decisions_per_second": round(done * len(record) / elapsed),
            "fields_per_record": len(record)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.micro", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--people", type=int, default=10000)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--seconds", type=float, default=3.0, help="minimisation run time")
    args = p.parse_args(argv)
    VAR.mkdir(parents=True, exist_ok=True)
    rows = [applying(kind, args.people, args.batch) for kind in ("sqlite", "postgresql")]
    minimised = decisions(args.seconds)
    out = {"applying": rows, "minimise": minimised}
    (VAR / "micro.json").write_text(json.dumps(out, indent=2))
    print(f"Applying {args.people} opt-outs stored {args.batch} to an inbox row "  # noqa: T201
          "(the applier alone, in process)")
    for r in rows:
        print(f"  {r['backend']:<11} {r['events_per_second']:>8} events/s  "  # noqa: T201
              f"{r['statements_per_event']:>6} SQL statements/event "
              f"({r['statements_per_100_events']} per 100)  {r['ticks']} ticks, "
              f"{r['seconds']} s")
    print(f"Minimisation on one core: {minimised['records_per_second']} records/s = "  # noqa: T201
          f"{minimised['field_decisions_per_second']} field decisions/s "
          f"({minimised['fields_per_record']} fields per record)")


if __name__ == "__main__":
    main()
