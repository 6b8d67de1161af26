"""``make demo``: one unsubscribe in HubSpot, seen everywhere, on the embedded default.

Starts the vendor emulators and privasync (SQLite, in-process broker), seeds a
few contacts in every system, unsubscribes one the way a marketer would in
HubSpot (HubSpot then sends privasync a signed webhook), and shows each system
catching up and how long it took.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from connectors.salesforce.plugin import PLUGIN as SALESFORCE
from core import ledger
from privasync.demo.stack import Stack, start_stack

TIMEOUT_SECONDS = 30.0


def _mask(email: str) -> str:
    local, domain = email.split("@", 1)
    return f"{local[0]}***@{domain}"


def _say(text: str = "") -> None:
    print(text, flush=True)  # noqa: T201 - the demo talks to a person


def _seed(stack: Stack, count: int) -> list[str]:
    emails = [f"customer{i}@example.com" for i in range(1, count + 1)]
    for email in emails:
        stack.seed_customer(email, flush=False)
    stack.emulators.hubspot.flush_webhooks()
    return emails


def _checks(stack: Stack, email: str) -> dict[str, Callable[[], bool]]:
    emu = stack.emulators
    return {
        "Salesforce  (Contact.HasOptedOutOfEmail = true)": lambda: all(
            (emu.salesforce.record(r) or {}).get("HasOptedOutOfEmail") is True
            for r in emu.salesforce.find_by_email(email)),
        "Mailchimp   (member status = unsubscribed)": lambda: (
            emu.mailchimp.member(email) or {}).get("status") == "unsubscribed",
        "Partner     (contact centre told: offers + product news withdrawn)": lambda: _partner(
            stack, email),
    }


def _partner(stack: Stack, email: str) -> bool:
    with stack.container.engine.connect() as conn:
        subject = stack.container.identity.by_email(conn, email)
    state = stack.emulators.partner.state(subject) if subject else None
    if not state:
        return False
    consents = state["consents"].values()
    return bool(consents) and all(c["status"] == "withdrawn" for c in consents)


def _watch(checks: dict[str, Callable[[], bool]], started: float) -> list[str]:
    pending = dict(checks)
    while pending and time.monotonic() - started < TIMEOUT_SECONDS:
        for name, check in list(pending.items()):
            if check():
                _say(f"  ✔ {name}: caught up after {(time.monotonic() - started) * 1000:.0f} ms")
                del pending[name]
        time.sleep(0.02)
    return list(pending)


def run_demo(contacts: int = 5) -> int:
    var = Path("var/demo")
    shutil.rmtree(var, ignore_errors=True)
    var.mkdir(parents=True)
    _say("privasync demo: unsubscribe once in HubSpot, seen everywhere.")
    _say("Starting emulators for HubSpot, Salesforce, Mailchimp and a partner contact centre,")
    _say("and privasync on the embedded default (SQLite, in-process broker and worker)...")
    url = demo_database_url(var)
    stack = start_stack(database_url=url, var_dir=var)
    try:
        code = _run(stack, max(1, contacts))
    finally:
        stack.stop()
    _say("\nThe demo's database is kept apart from the default one (var/privasync.db). "
         "Look around it with:")
    _say(f"  export PRIVASYNC_DATABASE_URL={url}")
    _say(f"  export PRIVASYNC_VAR_DIR={var.resolve()}  # its keys (the KEK) live there")
    _say("  privasync status; privasync audit verify")
    return code


def demo_database_url(var: Path) -> str:
    """An absolute URL, so the line the demo prints works from any directory."""
    return f"sqlite:///{(var / 'privasync.db').resolve()}"


def _run(stack: Stack, contacts: int) -> int:
    _say(f"  privasync listening on {stack.url}")
    emails = _seed(stack, contacts)
    _say(f"\nSeeded {len(emails)} customers, subscribed to product news and offers in HubSpot,")
    _say("present in Salesforce and on the Mailchimp list.")
    target = emails[0]
    contact = stack.emulators.hubspot.find_by_email(target)
    assert contact is not None
    _say(f"\nA marketer clicks 'Unsubscribe from all email' for {_mask(target)} "
         f"(HubSpot contact {contact}).")
    _say("HubSpot sends privasync a signed webhook; privasync records it and fans it out:\n")
    started = time.monotonic()
    stack.emulators.hubspot.ui_unsubscribe_all(contact)
    late = _watch(_checks(stack, target), started)
    _report(stack, emails)
    if late:
        _say(f"\nNot caught up within {TIMEOUT_SECONDS:.0f} s: {', '.join(late)}")
        return 1
    _say("\nDone: one unsubscribe, every system agrees, and the proof is in the ledger.")
    return 0


def _echo_outcomes(stack: Stack) -> tuple[int, int, int]:
    """(consent jobs, record jobs, Salesforce events that changed nothing) so far."""
    from sqlalchemy import func, select

    from core.db import event_counts, jobs

    with stack.container.engine.connect() as conn:
        kinds: dict[str, int] = {r[0]: int(r[1]) for r in conn.execute(
            select(jobs.c.kind, func.count()).group_by(jobs.c.kind))}
        echoes = conn.execute(select(func.coalesce(func.sum(event_counts.c.n), 0)).where(
            event_counts.c.source == "salesforce",
            event_counts.c.outcome == "unchanged")).scalar_one()
    return int(kinds.get("consent", 0)), int(kinds.get("record", 0)), int(echoes)


def _report(stack: Stack, emails: list[str]) -> None:
    emu = stack.emulators
    jobs_before, _, _ = _echo_outcomes(stack)
    time.sleep(2 * SALESFORCE.section(stack.container.settings).poll_interval_seconds + 0.5)
    jobs_after, record_jobs, echoes = _echo_outcomes(stack)
    others = [e for e in emails[1:] if (emu.mailchimp.member(e) or {}).get("status")
              == "subscribed"]
    with stack.container.engine.connect() as conn:
        report = ledger.verify(conn)
    _say(f"\nOther customers untouched: {len(others)} of {len(emails) - 1} still subscribed "
         "in Mailchimp.")
    _say(f"Consent jobs run: {jobs_before}, one per destination. Salesforce's poller then saw "
         f"our own write come back ({echoes} echo event(s)): it caused "
         f"{jobs_after - jobs_before} new job(s).")
    _say(f"Record jobs: {record_jobs} (the seeded contacts' fields, each minimised for its "
         "destination before it left).")
    _say(f"Vendor API calls: HubSpot {emu.hubspot.total_calls()}, Salesforce "
         f"{emu.salesforce.total_calls()}, Mailchimp {emu.mailchimp.total_calls()} "
         "(seeding and polling included).")
    _say(f"Audit: {report}.")
