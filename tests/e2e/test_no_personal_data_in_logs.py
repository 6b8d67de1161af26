"""The whole product at DEBUG: a person's record synced, unsubscribed, exported, erased and
coming back, and not one of the values the test sent (address, names, phone, field
values, Mailchimp's MD5 of the address) in a log line, an exception's text or a metric."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import structlog

from connectors.mailchimp import subscriber_hash
from core import subject_requests as rq
from privasync.cli.main import configure_logging
from privasync.demo.stack import Stack
from tests.e2e import test_erasure_everywhere as everywhere
from tests.e2e.conftest import settle, wait_for
from tests.e2e.test_erasure_everywhere import (
    EMAIL,
    FIRST,
    LAST,
    PHONE,
    completed,
    counted,
    known_everywhere,
    run,
)
from tests.timing import scaled

# The fixtures of the erasure suite: its stack with the SMTP relay, and the CLI on it.
relay, stack, cli_env = everywhere.relay, everywhere.stack, everywhere.cli_env

INTERESTS = "orchideeën en bonsai"


@pytest.fixture
def debug_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Everything at DEBUG, through the product's own logging set-up (the CLI sets it
    again at each command, from PRIVASYNC_LOG_LEVEL)."""
    monkeypatch.setenv("PRIVASYNC_LOG_LEVEL", "DEBUG")
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("DEBUG")
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def personal_values() -> list[str]:
    digits = PHONE.replace(" ", "")
    return [EMAIL, EMAIL.split("@")[0], FIRST, LAST, PHONE, digits, digits[3:], "4821 7730",
            INTERESTS, subscriber_hash(EMAIL), hashlib.sha256(EMAIL.encode()).hexdigest()]


def test_a_run_at_debug_logs_no_personal_value_anywhere(
        capfd: pytest.CaptureFixture[str], debug_logs: None, cli_env: Stack,
        tmp_path: Path) -> None:
    stack = cli_env
    emu = stack.emulators
    said: list[str] = []
    contact, subject = known_everywhere(stack)  # names and phone through the record sync
    emu.mailchimp.user_update_profile(EMAIL, FNAME=FIRST, INTERESTS=INTERESTS)
    emu.mailchimp.user_unsubscribe(EMAIL)
    emu.mailchimp.flush_webhooks()
    settle(stack)

    created = run("requests", "create", "--kind", "access", "--email", EMAIL,
                  "--identity", "verified", "--format", "json")
    said.append(created.output)
    assert created.exit_code == 0, created.output
    request_id = json.loads(created.stdout)["id"]

    def status() -> str | None:
        with stack.container.engine.connect() as conn:
            return getattr(rq.get(conn, request_id), "status", None)

    wait_for("the access request answered", lambda: status() == rq.COMPLETED, timeout=30)
    exported = run("requests", "export", request_id, "--out", str(tmp_path / "bundle.json"))
    said.append(exported.output)
    assert exported.exit_code == 0

    emu.hubspot.ui_gdpr_delete(contact)
    completed(stack, subject)
    emu.mailchimp.user_subscribe(EMAIL)  # back again: suppressed, and logged as such
    emu.mailchimp.flush_webhooks()
    wait_for("the return suppressed", lambda: counted(stack, "mailchimp", "suppressed") >= 1)
    metrics = requests.get(f"{stack.url}/metrics", timeout=scaled(10)).text

    out, err = capfd.readouterr()
    logged = "\n".join([out, err, *said])
    assert logged.count('"level": "debug"') > 0 and logged.count("{") > 20  # it did log
    for where, text in (("logs", logged), ("metrics", metrics)):
        leaked = [v for v in personal_values() if v.lower() in text.lower()]
        lines = [ln[:200] for ln in text.splitlines()
                 if any(v.lower() in ln.lower() for v in leaked)]
        assert leaked == [], f"personal values in the {where}: {leaked}, e.g. {lines[:3]}"
