"""`privasync smoke` run against the emulators with privasync running (PostgreSQL, Redis,
the app, a worker and the scheduler): every step passes wherever the person unsubscribes,
nothing of the tagged address is left anywhere, the erasure request is complete, and the
address is never printed; without the flag it refuses (exit 2), and a vendor that refuses
is a FAIL line naming it (exit 1) after which what was made is removed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from core import subject_requests as rq
from privasync.cli.main import main as cli
from privasync.demo.stack import Stack, start_stack
from privasync.emulators.http import Fault
from tests.conftest import BROKER_NAMESPACE, clear_broker, make_database

MAPPINGS = Path(__file__).parents[2] / "mappings"
OPERATOR = "ops.tester@example.nl"
WRITES = "--i-understand-this-writes"
SYSTEMS = ("salesforce", "hubspot", "mailchimp")
TAG = re.compile(r"^smoke (privasync-smoke-[0-9a-f]{8}):", re.M)
STEP = re.compile(r"^(\w+)\s+(\w+)\s+\d+\.\d+s  (OK|FAIL)(?:  (.*))?$", re.M)


@pytest.fixture
def stack(redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """privasync running on the emulators, and the CLI on the same settings and database."""
    clear_broker(redis_url)
    running = start_stack(database_url=make_database("postgresql", tmp_path), var_dir=tmp_path,
                          broker_url=redis_url, broker_namespace=BROKER_NAMESPACE,
                          mappings_dir=MAPPINGS, poll_seconds=0.3)
    s, emu = running.container.settings, running.emulators
    assert s.secret_key is not None
    for name, value in {
            "DATABASE_URL": s.database_url, "VAR_DIR": str(s.var_dir),
            "MAPPINGS_DIR": str(MAPPINGS), "SECRET_KEY": s.secret_key.get_secret_value(),
            "PARTNER_CONTACT_CENTRE_SECRET": emu.partner.secret,
            "HUBSPOT__BASE_URL": emu.hubspot.url, "HUBSPOT__ACCESS_TOKEN": emu.hubspot.access_token,
            "SALESFORCE__INSTANCE_URL": emu.salesforce.url,
            "SALESFORCE__SESSION_ID": emu.salesforce.session_id,
            "MAILCHIMP__BASE_URL": f"{emu.mailchimp.url}/3.0",
            "MAILCHIMP__API_KEY": emu.mailchimp.api_key,
            "MAILCHIMP__LIST_ID": emu.mailchimp.list_id}.items():
        monkeypatch.setenv(f"PRIVASYNC_{name}", value)
    yield running
    running.stop()


def smoke(*args: str) -> Result:
    return CliRunner().invoke(cli, ["smoke", "--address", OPERATOR, "--timeout", "60", *args])


def person(result: Result) -> str:
    """The tagged address of the run, rebuilt from the tag it printed."""
    found = TAG.search(result.output)
    assert found is not None, result.output
    return f"ops.tester+{found[1]}@example.nl"


def steps(result: Result) -> list[tuple[str, str, str]]:
    return [(m[1], m[2], m[3]) for m in STEP.finditer(result.output)]


def nothing_left(stack: Stack, address: str) -> None:
    emu = stack.emulators
    assert emu.hubspot.find_by_email(address) is None
    assert emu.salesforce.find_by_email(address) == []
    assert emu.mailchimp.member(address) is None


def smoke_requests(stack: Stack) -> list[rq.Request]:
    """The erasure requests the smoke opened (its actor is ``smoke``)."""
    with stack.container.engine.connect() as conn:
        return [r for r in rq.listing(conn, datetime.now(UTC), kind="erasure")
                if r.actor == "smoke"]


def api_changes_reach_privasync(stack: Stack) -> None:
    """The stack's Mailchimp webhook sends what people and admins do; the smoke unsubscribes
    through the API, which Mailchimp tells only a webhook with the "api" source (README)."""
    from privasync.demo.stack import WEBHOOK_TOKEN

    stack.emulators.mailchimp.configure_webhook(
        f"{stack.url}/webhooks/mailchimp/{WEBHOOK_TOKEN}", sources=("api",))


@pytest.mark.parametrize("where", SYSTEMS)
def test_the_smoke_passes_every_step_and_leaves_nothing_of_the_person_anywhere(
        stack: Stack, where: str) -> None:
    if where == "mailchimp":
        api_changes_reach_privasync(stack)
    result = smoke("--unsubscribe-in", where, WRITES)
    assert result.exit_code == 0, result.output
    others = sorted(s for s in SYSTEMS if s != where)
    done = steps(result)
    assert done[:5] == [("create", "salesforce", "OK"), ("create", "hubspot", "OK"),
                        ("create", "mailchimp", "OK"), ("learn", "privasync", "OK"),
                        ("unsubscribe", where, "OK")], result.output
    assert sorted(done[5:7]) == [("agree", s, "OK") for s in others], result.output
    assert done[7:9] == [("erase", "privasync", "OK"), ("complete", "privasync", "OK")]
    assert sorted(done[9:12]) == sorted(("gone", s, "OK") for s in SYSTEMS), result.output
    assert done[12:] == [("cleanup", s, "OK") for s in SYSTEMS], result.output
    assert result.output.count("nothing left") == 3
    address = person(result)
    assert OPERATOR not in result.output and address not in result.output
    assert "@" not in result.output
    nothing_left(stack, address)
    [request] = smoke_requests(stack)
    assert request.status == rq.COMPLETED
    assert f"request {request.id}" in result.output


def test_the_smoke_refuses_to_write_without_being_told_it_may(stack: Stack) -> None:
    result = smoke()
    assert result.exit_code == 2
    assert WRITES in result.output and len(result.output.strip().splitlines()) == 1
    assert stack.emulators.salesforce.find_by_email(OPERATOR) == []
    assert stack.emulators.hubspot.total_calls("/crm") == 0


def test_a_vendor_that_refuses_the_address_is_a_fail_line_and_nothing_is_left(
        stack: Stack) -> None:
    detail = "Email: invalid email address: (the address, which must never be shown)"
    stack.emulators.salesforce.inject(Fault(400, [{
        "message": detail, "errorCode": "INVALID_EMAIL_ADDRESS", "fields": ["Email"]}],
        path_pattern=r"/sobjects/Contact/?$"))
    result = smoke("--unsubscribe-in", "hubspot", WRITES)
    assert result.exit_code == 1, result.output
    assert steps(result) == [("create", "salesforce", "FAIL"), ("cleanup", "salesforce", "OK")]
    assert re.search(r"^create\s+salesforce .*FAIL  salesforce refused: INVALID_EMAIL_ADDRESS",
                     result.output, re.M), result.output
    assert "failed" in result.output and detail not in result.output
    nothing_left(stack, person(result))
    assert smoke_requests(stack) == []
