"""Forget me, everywhere, with proof: erasure started in HubSpot, from the CLI and from the
admin API, carried to Salesforce, Mailchimp and the partner, confirmed to the person,
and kept out afterwards; on the emulators, Redis and PostgreSQL."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import requests
from click.testing import CliRunner, Result
from sqlalchemy import select, update

from core import ledger
from core import subject_requests as rq
from core.crypto import Keyring
from core.db import event_counts, metadata, subject_keys
from core.db import ledger as ledger_table
from core.keys import keys_of
from core.model import (
    Channel,
    ConsentChange,
    ConsentChanged,
    ConsentStatus,
    ErasureRequested,
    EventMeta,
    Evidence,
    RequestKind,
    RequestReceived,
    SubjectHint,
    SystemRef,
)
from privasync.app.evidence import check_segment
from privasync.cli.main import main as cli
from privasync.demo.stack import Emulators, Stack, start_stack
from privasync.emulators.partner import PartnerEmulator
from tests.api.conftest import issue_token
from tests.conftest import BROKER_NAMESPACE, make_database
from tests.e2e.conftest import (
    BOTH_BROKERS,
    MAPPINGS,
    applied,
    job_count,
    settle,
    subject_of,
    wait_for,
)
from tests.smtp import Relay, run_relay
from tests.timing import scaled

EMAIL = "annelies.zwartkop@example.nl"
FIRST, LAST, PHONE = "Annelies", "Zwartkop", "+31 6 4821 7730"


@pytest.fixture
def relay() -> Iterator[Relay]:
    yield from run_relay()


@pytest.fixture
def stack(broker: str, tmp_path: Path, relay: Relay) -> Iterator[Stack]:
    database = make_database("postgresql", tmp_path)
    running = start_stack(database_url=database, var_dir=tmp_path, broker_url=broker,
                          broker_namespace=BROKER_NAMESPACE, mappings_dir=MAPPINGS,
                          poll_seconds=0.3, smtp_port=relay.port)
    yield running
    running.stop()


def known_everywhere(stack: Stack) -> tuple[str, str]:
    """The person in every system, with a name and a phone number that passed through
    privasync (HubSpot -> Salesforce record sync); returns (HubSpot contact, subject)."""
    emu = stack.emulators
    contact = stack.seed_customer(EMAIL)
    emu.hubspot.ui_set_property(contact, "hs_lifecyclestage_customer_date", "2024-03-01")
    emu.hubspot.ui_set_property(contact, "firstname", FIRST)
    emu.hubspot.ui_set_property(contact, "lastname", LAST)
    emu.hubspot.ui_set_property(contact, "phone", PHONE)
    emu.hubspot.flush_webhooks()
    sf = emu.salesforce
    wait_for("the phone number synced to Salesforce", lambda: any(
        (sf.record(i) or {}).get("Phone") == PHONE for i in sf.find_by_email(EMAIL)))
    settle(stack)
    subject = subject_of(stack, EMAIL)
    assert subject is not None
    return contact, subject


def erasure_of(stack: Stack, subject: str) -> rq.Request | None:
    with stack.container.engine.connect() as conn:
        found = [r for r in rq.listing(conn, datetime.now(UTC), kind="erasure")
                 if r.subject_id == subject]
        return rq.get(conn, found[0].id) if found else None


def completed(stack: Stack, subject: str) -> rq.Request:
    wait_for("the erasure completed", lambda: getattr(
        erasure_of(stack, subject), "status", None) == rq.COMPLETED, timeout=40)
    request = erasure_of(stack, subject)
    assert request is not None
    return request


def gone_everywhere(stack: Stack, request: rq.Request) -> None:
    emu = stack.emulators
    assert emu.salesforce.find_by_email(EMAIL) == []
    assert emu.mailchimp.member(EMAIL) is None
    assert emu.hubspot.find_by_email(EMAIL) is None
    assert emu.partner.state(request.subject_id) is None
    asked = emu.partner.erasure(request.id) or {}
    # Asked by the one address privasync's updates carried to it (kept as a keyed reference).
    assert (asked.get("status"), asked.get("emails")) == ("completed", [EMAIL])
    statuses = {d.name: d.status for d in request.destinations}
    assert statuses == {"hubspot": "done", "mailchimp": "done",
                        "partner:contact_centre": "done", "salesforce": "done"}
    for d in request.destinations:
        assert d.receipt.get("at"), d
    assert request.confirmed_at is not None


def told(relay: Relay) -> list[str]:
    """The recipients of every mail the relay accepted."""
    return [to for message in relay.mailbox.received for to in message.rcpt_tos]


def raw_database(stack: Stack, tmp_path: Path) -> bytes:
    """A plain-SQL dump of the whole database, as a backup would hold it."""
    url = urlsplit(stack.container.settings.database_url.replace("+psycopg", ""))
    out = tmp_path / "dump.sql"
    subprocess.run(["pg_dump", "--no-owner", "-f", str(out),
                    url._replace(scheme="postgresql").geturl()], check=True, timeout=scaled(60))
    return out.read_bytes()


def readable(blob: bytes) -> list[str]:
    """Which of the person's values appear in ``blob`` (any case, the phone in any
    spacing)."""
    lowered = blob.lower()
    digits = PHONE.replace(" ", "").lstrip("+")
    found = [v for v in (EMAIL, FIRST, LAST) if v.lower().encode() in lowered]
    return found + ([PHONE] if digits.encode() in blob.replace(b" ", b"") else [])


def opened_with_every_key(stack: Stack) -> bytes:
    """Every value in every table, and whatever the installation's secret or any subject
    key still held can decrypt of it: what an attacker with the database and our
    secrets would read."""
    keyring = stack.container.keyring
    out: list[bytes] = []
    with stack.container.engine.connect() as conn:
        keys = list(keys_of(conn, keyring, conn.execute(
            select(subject_keys.c.subject_id)).scalars()).values())
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                for value in row:
                    if isinstance(value, str):
                        out.append(value.encode())
                    elif isinstance(value, bytes):
                        out.append(value)
                        out += [p for p in [keyring.unseal(value)] + [
                            Keyring.decrypt(k, value) for k in keys] if p]
    return b"\n".join(out)


def counted(stack: Stack, source: str, outcome: str) -> int:
    with stack.container.engine.connect() as conn:
        return int(conn.execute(select(event_counts.c.n).where(
            event_counts.c.source == source, event_counts.c.outcome == outcome))
            .scalar_one_or_none() or 0)


def vendor_writes(stack: Stack) -> dict[str, int]:
    """Calls that change something at each vendor (reads do not count)."""
    emu = stack.emulators
    return {"salesforce": sum(1 for m, _, _ in emu.salesforce.log if m != "GET"),
            "mailchimp": sum(1 for m, _, _ in emu.mailchimp.log if m != "GET"),
            "partner": len(emu.partner.log)}


def comes_back_everywhere(stack: Stack) -> None:
    """The person reappears in each system on their own; privasync brings none of it
    anywhere else and records each reappearance."""
    emu = stack.emulators
    settle(stack)
    jobs_before, writes_before = job_count(stack), vendor_writes(stack)
    emu.hubspot.form_submission(EMAIL, firstname=FIRST)  # forms pass HubSpot's blocklist
    emu.hubspot.flush_webhooks()
    emu.salesforce.create_lead(EMAIL, last_name=LAST)
    emu.mailchimp.user_subscribe(EMAIL)
    emu.mailchimp.flush_webhooks()
    wait_for("all three reappearances suppressed", lambda: all(
        counted(stack, source, "suppressed") >= 1
        for source in ("hubspot", "salesforce", "mailchimp")), timeout=30)
    settle(stack)
    assert job_count(stack) == jobs_before
    assert vendor_writes(stack) == writes_before


@BOTH_BROKERS
def test_an_erasure_started_in_hubspot_reaches_every_system_and_is_proven(
        stack: Stack, relay: Relay, tmp_path: Path) -> None:
    contact, subject = known_everywhere(stack)
    stack.seed_customer("bystander@example.nl")
    assert EMAIL in readable(opened_with_every_key(stack))  # the check can see it
    stack.emulators.hubspot.ui_gdpr_delete(contact)
    request = completed(stack, subject)
    gone_everywhere(stack, request)
    assert told(relay) == [EMAIL]
    assert request.source == "hubspot"
    assert stack.emulators.mailchimp.member("bystander@example.nl") is not None

    comes_back_everywhere(stack)
    history = _show(stack, request.id)["history"]
    assert {e["source"] for e in history if e["event"] == "suppression.blocked"} == {
        "hubspot", "mailchimp", "salesforce"}

    assert readable(raw_database(stack, tmp_path)) == []
    assert readable(opened_with_every_key(stack)) == []
    _audit_holds_until_tampered(stack)


def _show(stack: Stack, request_id: str) -> dict[str, Any]:
    from privasync.app.evidence import story

    return story(stack.container, request_id)


def _audit_holds_until_tampered(stack: Stack) -> None:
    with stack.container.engine.begin() as conn:
        assert ledger.verify(conn).ok
        first = conn.execute(select(ledger_table.c.seq).order_by(
            ledger_table.c.seq).limit(1)).scalar_one()
        conn.execute(update(ledger_table).where(ledger_table.c.seq == first)
                     .values(kind="consent.granted.edited"))
        assert not ledger.verify(conn).ok


@pytest.fixture
def cli_env(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    """The CLI on the same installation as the running stack (its database, its secret)."""
    settings = stack.container.settings
    monkeypatch.setenv("PRIVASYNC_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("PRIVASYNC_VAR_DIR", str(settings.var_dir))
    monkeypatch.setenv("PRIVASYNC_MAPPINGS_DIR", str(settings.mappings_dir))
    monkeypatch.setenv("PRIVASYNC_SECRET_KEY", secret(stack))
    monkeypatch.setenv("PRIVASYNC_PARTNER_CONTACT_CENTRE_SECRET", stack.emulators.partner.secret)
    return stack


def secret(stack: Stack) -> str:
    key = stack.container.settings.secret_key
    assert key is not None
    return key.get_secret_value()


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


@BOTH_BROKERS
def test_an_erasure_typed_in_by_customer_service_is_carried_out_and_proven(
        cli_env: Stack, relay: Relay) -> None:
    stack = cli_env
    _, subject = known_everywhere(stack)
    created = run("requests", "create", "--kind", "erasure", "--email", EMAIL,
                  "--identity", "verified", "--format", "json")
    assert created.exit_code == 0, created.output
    request_id = json.loads(created.stdout)["id"]
    request = completed(stack, subject)
    assert request.id == request_id and request.actor == "cli"
    gone_everywhere(stack, request)
    assert told(relay) == [EMAIL]
    comes_back_everywhere(stack)

    shown = run("requests", "show", request_id, "--format", "json")
    assert shown.exit_code == 0, shown.output
    story = json.loads(shown.stdout)
    assert story["status"] == "completed" and story["person_told_at"]
    events = [e["event"] for e in story["history"]]
    assert "suppression.blocked" in events
    assert EMAIL not in shown.output
    pack = run("requests", "evidence", request_id)
    assert pack.exit_code == 0 and EMAIL not in pack.output
    assert check_segment(json.loads(pack.stdout)["segment"])

    assert run("audit", "verify").exit_code == 0
    _audit_holds_until_tampered(stack)
    tampered = run("audit", "verify")
    assert tampered.exit_code == 1, tampered.output


def test_an_erasure_recorded_over_the_admin_api_is_carried_out_and_shown(
        stack: Stack, relay: Relay) -> None:
    _, subject = known_everywhere(stack)
    url = f"{stack.url}/api/v1/requests"
    body = {"kind": "erasure", "email": EMAIL, "identity": "verified"}
    reader_token = issue_token(stack, "dpo-dashboard", "requests:read")
    writer_token = issue_token(stack, "service-desk", "requests:write", "requests:read")
    assert requests.post(url, json=body, timeout=scaled(10)).status_code == 401
    assert requests.post(url, json=body, timeout=scaled(10), headers={
        "Authorization": "Bearer ps_not-a-token"}).status_code == 401
    refused = requests.post(url, json=body, timeout=scaled(10), headers={
        "Authorization": f"Bearer {reader_token}"})
    assert refused.status_code == 403
    applied(stack)
    assert erasure_of(stack, subject) is None  # refused calls stored nothing

    made = requests.post(url, json=body, timeout=scaled(10), headers={
        "Authorization": f"Bearer {writer_token}"})
    assert made.status_code in (201, 202), made.text
    request = completed(stack, subject)
    assert request.id == made.json()["id"] and request.actor == "service-desk"
    gone_everywhere(stack, request)
    assert told(relay) == [EMAIL]

    shown = requests.get(f"{url}/{request.id}", timeout=scaled(10), headers={
        "Authorization": f"Bearer {reader_token}"})
    assert shown.status_code == 200
    view = shown.json()
    assert view["status"] == "completed"
    assert {d["destination"]: d["status"] for d in view["destinations"]} == {
        "hubspot": "done", "mailchimp": "done", "partner:contact_centre": "done",
        "salesforce": "done"}
    assert EMAIL not in shown.text


def test_an_erasure_leaves_nothing_in_salesforces_recycle_bin_as_query_all_shows(
        stack: Stack) -> None:
    """Hard delete: every record erased is purged from the Recycle Bin (not restorable);
    queryAll shows the purged ones as deleted for about a day, and the receipt says so."""
    _, subject = known_everywhere(stack)
    sf = stack.emulators.salesforce
    held = sf.find_by_email(EMAIL)
    assert held
    _erase_over_api(stack)
    request = completed(stack, subject)
    gone_everywhere(stack, request)

    found = [row for sobject in ("Contact", "Lead") for row in _query_all(
        stack, f"SELECT Id, IsDeleted FROM {sobject} WHERE Email = '{EMAIL}'")]
    assert {r["Id"] for r in found} >= set(held)
    assert all(r["IsDeleted"] for r in found)
    assert [i for i in {r["Id"] for r in found} if sf.in_recycle_bin(i)] == []
    [salesforce] = [d for d in request.destinations if d.name == "salesforce"]
    assert salesforce.receipt["verified"].startswith("queryAll Contact, Lead")
    assert " 0 found in Salesforce or its Recycle Bin; " in salesforce.receipt["verified"]


def _erase_over_api(stack: Stack) -> None:
    token = issue_token(stack, "service-desk", "requests:write", "requests:read")
    made = requests.post(f"{stack.url}/api/v1/requests", json={"kind": "erasure",
                         "email": EMAIL, "identity": "verified"}, timeout=scaled(10),
                         headers={"Authorization": f"Bearer {token}"})
    assert made.status_code in (201, 202), made.text


def _query_all(stack: Stack, soql: str) -> list[dict[str, Any]]:
    sf = stack.emulators.salesforce
    answer = requests.get(f"{sf.url}/services/data/v59.0/queryAll/", params={"q": soql},
                          headers={"Authorization": f"Bearer {sf.session_id}"},
                          timeout=scaled(10))
    assert answer.status_code == 200, answer.text
    return list(answer.json()["records"])


def test_a_bounced_confirmation_still_completes_the_erasure_and_shreds_the_key(
        cli_env: Stack, relay: Relay) -> None:
    stack = cli_env
    _, subject = known_everywhere(stack)
    relay.mailbox.refuse_rcpt = "550 5.1.1 <{address}>: mailbox unavailable"
    created = run("requests", "create", "--kind", "erasure", "--email", EMAIL,
                  "--identity", "verified", "--format", "json")
    assert created.exit_code == 0, created.output
    request_id = json.loads(created.stdout)["id"]

    request = completed(stack, subject)
    assert request.id == request_id and told(relay) == []
    assert request.confirmed_at is None
    with stack.container.engine.connect() as conn:
        assert conn.execute(select(subject_keys.c.subject_id).where(
            subject_keys.c.subject_id == subject)).first() is None  # the key is gone

    shown = run("requests", "show", request_id)
    assert shown.exit_code == 0, shown.output
    assert "note: the person could not be told: smtp_recipient_refused" in shown.output
    story = json.loads(run("requests", "show", request_id, "--format", "json").stdout)
    not_told = [e for e in story["history"] if e["event"] == "request.person_not_told"]
    assert [(e["reason"], e["given_up"]) for e in not_told] == [
        ("smtp_recipient_refused", "refused")]
    assert "subject.erased" in [e["event"] for e in story["history"]]
    reader_token = issue_token(stack, "dpo-dashboard", "requests:read")
    view = requests.get(f"{stack.url}/api/v1/requests/{request_id}", timeout=scaled(10),
                        headers={"Authorization": f"Bearer {reader_token}"})
    assert view.status_code == 200
    assert view.json()["status"] == "completed" and view.json()["person_told_at"] is None
    assert view.json()["note"] == "the person could not be told: smtp_recipient_refused"
    assert EMAIL not in shown.output + view.text
    assert EMAIL not in readable(opened_with_every_key(stack))


@pytest.fixture
def silent_partner_stack(broker: str, tmp_path: Path, relay: Relay) -> Iterator[Stack]:
    """The partner takes erasure requests and never acknowledges; it has 2 s to."""
    mappings = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, mappings)
    partners = mappings / "partners.yaml"
    partners.write_text(partners.read_text().replace("ack_within: 72h", "ack_within: 2s"))
    running = start_stack(database_url=make_database("postgresql", tmp_path),
                          var_dir=tmp_path, broker_url=broker,
                          broker_namespace=BROKER_NAMESPACE, mappings_dir=mappings,
                          poll_seconds=0.3, smtp_port=relay.port,
                          emulators=Emulators(partner=PartnerEmulator(auto_ack=False)))
    yield running
    running.stop()


def test_a_partner_that_never_acknowledges_leaves_the_request_open_and_overdue(
        silent_partner_stack: Stack, relay: Relay, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = silent_partner_stack
    _, subject = known_everywhere(stack)
    stack.container.store_events("admin", [RequestReceived(
        EventMeta("admin", "desk-1", datetime.now(UTC), kind="request.erasure"),
        SubjectHint(email=EMAIL), RequestKind.ERASURE, str(uuid.uuid4()))],
        datetime.now(UTC))

    def partner_status() -> str | None:
        request = erasure_of(stack, subject)
        found = {d.name: d for d in request.destinations} if request else {}
        partner = found.get("partner:contact_centre")
        return "overdue" if partner and partner.escalated_at else getattr(
            partner, "status", None)

    wait_for("the partner's acknowledgement escalated", lambda: partner_status() == "overdue",
             timeout=30)
    request = erasure_of(stack, subject)
    assert request is not None and request.status == rq.IN_PROGRESS
    statuses = {d.name: d.status for d in request.destinations}
    assert statuses == {"hubspot": "done", "mailchimp": "done",
                        "partner:contact_centre": "awaiting_ack", "salesforce": "done"}
    assert told(relay) == []  # nobody is told it is done while a processor holds data

    metrics = requests.get(f"{stack.url}/metrics", timeout=scaled(10)).text
    assert _sample(metrics, 'privasync_partner_acks_overdue{destination="partner:contact_centre"}'
                   ) == 1.0
    settings = stack.container.settings
    monkeypatch.setenv("PRIVASYNC_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("PRIVASYNC_SECRET_KEY", secret(stack))
    monkeypatch.setenv("PRIVASYNC_VAR_DIR", str(settings.var_dir))  # its KEK file
    monkeypatch.setenv("PRIVASYNC_MAPPINGS_DIR", str(settings.mappings_dir))
    monkeypatch.setenv("PRIVASYNC_PARTNER_CONTACT_CENTRE_SECRET", stack.emulators.partner.secret)
    listed = run("requests", "list", "--overdue", "--format", "json")
    assert listed.exit_code == 0, listed.output
    [shown] = json.loads(listed.stdout)
    assert shown["id"] == request.id and shown["acks_overdue"] == ["partner:contact_centre"]
    history = [e["event"] for e in _show(stack, request.id)["history"]]
    assert history.count("request.ack_overdue") == 1

    # The late acknowledgement still completes it, and only then is the person told.
    assert stack.emulators.partner.ack(request.id) == 200
    assert completed(stack, subject).confirmed_at is not None
    assert told(relay) == [EMAIL]


def _sample(metrics: str, name: str) -> float:
    line = next(ln for ln in metrics.splitlines() if ln.startswith(f"{name} "))
    return float(line.rsplit(" ", 1)[1])


def test_an_access_request_gathers_every_system_into_a_bundle_valid_against_its_schema(
        cli_env: Stack, tmp_path: Path) -> None:
    stack = cli_env
    contact, subject = known_everywhere(stack)
    stack.emulators.mailchimp.user_update_profile(EMAIL, FNAME=FIRST)
    stack.container.store_events("web_form", [ConsentChanged(
        EventMeta("web_form", "form-1", datetime.now(UTC)), SubjectHint(email=EMAIL),
        (ConsentChange("product_news", Channel.EMAIL, ConsentStatus.GRANTED),),
        Evidence("web_form", "double_opt_in", "privacy-form-v3", "submission-1"))],
        datetime.now(UTC))
    settle(stack)
    created = run("requests", "create", "--kind", "access", "--email", EMAIL,
                  "--identity", "verified", "--format", "json")
    assert created.exit_code == 0, created.output
    request_id = json.loads(created.stdout)["id"]

    def status() -> str | None:
        with stack.container.engine.connect() as conn:
            return getattr(rq.get(conn, request_id), "status", None)

    wait_for("every system answered", lambda: status() == rq.COMPLETED, timeout=30)
    out = tmp_path / "bundle.json"
    exported = run("requests", "export", request_id, "--out", str(out))
    assert exported.exit_code == 0, exported.output
    assert out.stat().st_mode & 0o077 == 0
    bundle = json.loads(out.read_text())
    token = issue_token(stack, "dpo", "requests:read")
    schema = requests.get(f"{stack.url}/api/v1/schemas/access-bundle.json", timeout=scaled(10),
                          headers={"Authorization": f"Bearer {token}"})
    assert schema.status_code == 200
    jsonschema.validate(bundle, schema.json())
    answered = requests.get(f"{stack.url}/api/v1/requests/{request_id}/export",
                            timeout=scaled(10), headers={"Authorization": f"Bearer {token}"})
    assert answered.status_code == 200
    jsonschema.validate(answered.json(), schema.json())  # the API answers what the file holds
    assert answered.json()["$schema"] == bundle["$schema"]

    held = {(s["system"], f["field"]): f for s in bundle["systems"] for f in s["fields"]}
    assert held[("hubspot", "phone")]["value"] == PHONE
    assert held[("hubspot", "phone")]["purposes"] == ["service", "partner_delivery"]
    assert held[("hubspot", "lastname")]["category"] == "user.name.last"
    assert held[("salesforce", "Phone")]["value"] == PHONE
    assert held[("salesforce", "LastName")]["value"] == LAST
    assert held[("mailchimp", "merge_fields.FNAME")]["value"] == FIRST
    assert held[("mailchimp", "merge_fields.FNAME")]["canonical"] == "first_name"
    assert any(system == "mailchimp" and f["value"] == "subscribed"
               for (system, _), f in held.items())
    assert {s["system"] for s in bundle["systems"]} == {"hubspot", "salesforce", "mailchimp"}
    assert bundle["person"] == {"subject_id": subject, "emails": [EMAIL]}
    [partner] = bundle["partners"]
    assert partner["partner"] == "contact_centre" and partner["sent"]
    [consent] = bundle["consent"]
    assert (consent["purpose"], consent["status"]) == ("product_news", "granted")
    assert consent["evidence"]["wording_version"] == "privacy-form-v3"
    assert bundle["consent_history"] and bundle["contact_moments"]
    markdown = tmp_path / "bundle.md"
    assert run("requests", "export", request_id, "--out", str(markdown),
               "--format", "markdown").exit_code == 0
    assert PHONE in markdown.read_text()
    assert contact


@pytest.fixture
def sqlite_stack(tmp_path: Path, relay: Relay) -> Iterator[Stack]:
    """The one-machine default: SQLite and the in-process broker."""
    running = start_stack(database_url=f"sqlite:///{tmp_path}/privasync.db", var_dir=tmp_path,
                          mappings_dir=MAPPINGS, poll_seconds=0.3, smtp_port=relay.port)
    yield running
    running.stop()


def opened_from_raw_bytes(blob: bytes, keyring: Keyring) -> bytes:
    """The bytes, and every Fernet token in them opened with the installation's secret or
    any Fernet key lying in the same bytes: what a stolen file and our secret give away."""
    tokens = set(re.findall(rb"gAAAAA[A-Za-z0-9_\-]+=*", blob))
    keys = {k for k in re.findall(rb"(?<![A-Za-z0-9_\-])[A-Za-z0-9_\-]{43}=", blob)}
    opened = [blob]
    for token in tokens:
        opened.append(keyring.unseal(token) or b"")
        for key in keys:
            try:
                opened.append(Keyring.decrypt(key, token) or b"")
            except ValueError:  # not a key after all
                continue
    return b"\n".join(opened)


def test_after_an_erasure_the_sqlite_files_hold_nothing_readable(
        sqlite_stack: Stack, relay: Relay, tmp_path: Path) -> None:
    stack = sqlite_stack
    contact, subject = known_everywhere(stack)
    files = [tmp_path / "privasync.db", tmp_path / "privasync.db-wal"]

    def raw() -> bytes:
        return b"".join(f.read_bytes() for f in files if f.exists())

    keyring = stack.container.keyring
    assert EMAIL in readable(opened_from_raw_bytes(raw(), keyring))  # the check can see it
    stack.emulators.hubspot.ui_gdpr_delete(contact)
    gone_everywhere(stack, completed(stack, subject))
    wait_for("no readable copy left in the database files",
             lambda: readable(opened_from_raw_bytes(raw(), keyring)) == [])
    assert readable(raw()) == []


def test_an_erased_person_who_comes_back_is_answered_and_erased_again(
        cli_env: Stack, relay: Relay, tmp_path: Path) -> None:
    """Erased, then back in HubSpot through a form with new data: privasync takes none of it
    in, yet an access request reads HubSpot again and says what was erased when, and a new
    erasure request erases what came back."""
    stack = cli_env
    contact, subject = known_everywhere(stack)
    stack.emulators.hubspot.ui_gdpr_delete(contact)
    first = completed(stack, subject)
    gone_everywhere(stack, first)

    hubspot = stack.emulators.hubspot
    hubspot.form_submission(EMAIL, firstname="Anneke")
    hubspot.flush_webhooks()
    wait_for("the return suppressed", lambda: counted(stack, "hubspot", "suppressed") >= 1)
    settle(stack)
    assert hubspot.find_by_email(EMAIL) is not None

    def finished(request_id: str) -> rq.Request | None:
        with stack.container.engine.connect() as conn:
            found = rq.get(conn, request_id)
        return found if found is not None and found.status == rq.COMPLETED else None

    created = run("requests", "create", "--kind", "access", "--email", EMAIL,
                  "--identity", "verified", "--format", "json")
    assert created.exit_code == 0, created.output
    access = json.loads(created.stdout)["id"]
    wait_for("the access request answered", lambda: finished(access) is not None, timeout=30)
    out = tmp_path / "bundle.json"
    assert run("requests", "export", access, "--out", str(out)).exit_code == 0
    bundle = json.loads(out.read_text())
    assert bundle["erased_before"]["request"] == first.id
    assert datetime.fromisoformat(bundle["erased_before"]["completed_at"]) == first.completed_at
    held = {(s["system"], f["field"]): f["value"] for s in bundle["systems"]
            for f in s["fields"]}
    assert held[("hubspot", "firstname")] == "Anneke"
    assert bundle["person"]["emails"] == [EMAIL]

    created = run("requests", "create", "--kind", "erasure", "--email", EMAIL,
                  "--identity", "verified", "--format", "json")
    assert created.exit_code == 0, created.output
    again = json.loads(created.stdout)["id"]
    wait_for("the second erasure completed", lambda: finished(again) is not None, timeout=40)
    request = finished(again)
    assert request is not None and request.id != first.id
    assert {d.name: d.status for d in request.destinations} == {
        "hubspot": "done", "mailchimp": "done", "partner:contact_centre": "done",
        "salesforce": "done"}
    assert hubspot.find_by_email(EMAIL) is None
    assert told(relay) == [EMAIL, EMAIL]
    assert EMAIL not in readable(opened_with_every_key(stack))


def test_a_hubspot_erasure_of_a_contact_privasync_never_knew_waits_for_identity_and_alerts(
        cli_env: Stack) -> None:
    """HubSpot purged the contact before its privacyDeletion reached privasync, which never
    stored it: the request waits for someone to find out who asked, counted and listed."""
    stack = cli_env
    ref = SystemRef("hubspot", "contact:4242424")
    assert stack.emulators.hubspot.contact("4242424") is None
    stack.container.store_events("admin", [ErasureRequested(
        EventMeta("hubspot", "privacy-deletion-1", datetime.now(UTC),
                  kind="contact.privacyDeletion"), SubjectHint(ref=ref))], datetime.now(UTC))

    def unidentified() -> float:
        metrics = requests.get(f"{stack.url}/metrics", timeout=scaled(10)).text
        return _sample(metrics, "privasync_requests_unidentified")

    wait_for("the unidentified request counted", lambda: unidentified() == 1.0, timeout=30)
    listed = run("requests", "list", "--status", "identity_pending")
    assert listed.exit_code == 0, listed.output
    header, line = listed.output.strip().splitlines()
    assert header.split() == ["id", "kind", "status", "due", "attention"]
    assert "erasure" in line and "note: unidentified" in line
    request_id = line.split()[0]
    shown = run("requests", "show", request_id, "--format", "json")
    story = json.loads(shown.stdout)
    assert story["status"] == "identity_pending" and story["note"].startswith("unidentified")
    [why] = [e for e in story["history"] if e["event"] == "request.unidentified"]
    assert (why["system"], why["record"]) == ("hubspot", "contact:4242424")
