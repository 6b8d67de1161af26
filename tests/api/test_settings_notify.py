"""The notifiers' settings come from the environment, with ``from`` spelt as operators expect."""

from __future__ import annotations

from pathlib import Path

import pytest

from privasync.app.settings import Settings


def test_smtp_settings_are_read_with_from_as_its_own_name(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"HOST": "mail.acme.example", "PORT": "2525",
                        "FROM": "privacy@acme.example", "USERNAME": "notifier",
                        "PASSWORD": "relay-password", "STARTTLS": "false",
                        "TIMEOUT_SECONDS": "3", "CA_FILE": "/etc/privasync/relay-ca.pem"}.items():
        monkeypatch.setenv(f"PRIVASYNC_SMTP__{name}", value)

    smtp = Settings().smtp

    assert (smtp.host, smtp.port, smtp.from_, smtp.username) == (
        "mail.acme.example", 2525, "privacy@acme.example", "notifier")
    assert smtp.password is not None and smtp.password.get_secret_value() == "relay-password"
    assert "relay-password" not in repr(smtp)
    assert (smtp.starttls, smtp.timeout_seconds) == (False, 3.0)
    assert smtp.ca_file == Path("/etc/privasync/relay-ca.pem")


def test_without_settings_nobody_is_configured_to_be_told() -> None:
    settings = Settings()
    assert (settings.smtp.host, settings.smtp.port, settings.smtp.starttls) == ("", 587, True)
    assert (settings.notify_webhook.url, settings.notify_webhook.secret) == ("", None)


def test_the_notify_webhook_is_read_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRIVASYNC_NOTIFY_WEBHOOK__URL", "https://mail.acme.example/notices")
    monkeypatch.setenv("PRIVASYNC_NOTIFY_WEBHOOK__SECRET", "s3cret")
    monkeypatch.setenv("PRIVASYNC_NOTIFY_WEBHOOK__TIMEOUT_SECONDS", "4")

    webhook = Settings().notify_webhook

    assert webhook.url == "https://mail.acme.example/notices"
    assert webhook.secret is not None and webhook.secret.get_secret_value() == "s3cret"
    assert webhook.timeout_seconds == 4.0
