"""The log redaction: no address, phone number, personal field or secret reaches a log
line, from our own events, a library's records or an exception's text."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from privasync.app.redaction import scrub
from privasync.cli.main import configure_logging

ADDRESS, PHONE, NAME = "Ada.Lovelace@example.org", "+31 6 4821 7730", "Augusta"


@pytest.fixture
def debug_logs() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("DEBUG")
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def lines(err: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def test_our_events_library_records_and_exception_texts_are_redacted(
        debug_logs: None, capsys: pytest.CaptureFixture[str]) -> None:
    structlog.get_logger("privasync").info(
        "subject.seen", subject="s-1", email=ADDRESS, note=f"ring {PHONE} or mail {ADDRESS}",
        fields={"first_name": NAME, "kept": "first_name"}, events=12345678,
        at="2026-03-01 10:20:30", latency=0.123456789)
    logging.getLogger("hubspot.crm").warning("no contact for %s", ADDRESS,
                                             extra={"phone": PHONE, "jobs": 3})
    try:
        raise ValueError(f"cannot parse {ADDRESS} / {PHONE}")
    except ValueError:
        logging.getLogger("privasync.applier").exception("inbox.row_failed")
        structlog.get_logger("privasync").exception("loop.error")
    err = capsys.readouterr().err
    assert ADDRESS.lower() not in err.lower() and NAME not in err
    assert "4821" not in err and "7730" not in err
    ours, theirs, stdlib_exc, struct_exc = lines(err)
    assert ours["email"] == "[redacted]" and ours["note"] == "ring [phone] or mail [email]"
    assert ours["fields"] == {"first_name": "[redacted]", "kept": "first_name"}
    assert (ours["events"], ours["at"], ours["latency"], ours["subject"]) == (
        12345678, "2026-03-01 10:20:30", 0.123456789, "s-1")
    assert theirs["event"] == "no contact for [email]" and theirs["phone"] == "[redacted]"
    assert theirs["jobs"] == 3
    for line in (stdlib_exc, struct_exc):
        assert "ValueError: cannot parse [email] / [phone]" in str(line["exception"])


def test_what_is_not_personal_is_left_alone() -> None:
    for text in ("2026-03-01T10:20:30+00:00", "job 123456789", "0.000123456",
                 "6f1c2a1e-8d1b-4c59-9a55-0c8f5a0e2b7d", "HTTP 429 after 12 s",
                 "https://api.hubapi.com/crm/v3/objects/contacts/12345678901"):
        assert scrub(text) == text
    for phone in ("+31 6 4821 7730", "020-123 4567", "(020) 1234567", "06-48217730"):
        assert scrub(f"call {phone}.") == "call [phone].", phone
