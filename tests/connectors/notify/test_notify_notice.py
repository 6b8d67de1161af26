"""A notice holds only what the message needs, and says it in the person's language."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from connectors.notify import Notice, SmtpNotifier, WebhookNotifier, build_notifier
from core.errors import BadInput, ConfigError

TO = "jan.jansen@example.nl"
DONE = datetime(2026, 3, 1, 12, 5, tzinfo=UTC)


def notice(**changes: Any) -> Notice:
    fields: dict[str, Any] = {"to": TO, "request_id": "dsr-0042", "kind": "erasure",
                              "completed_at": DONE, "organisation": "Acme"}
    return Notice(**{**fields, **changes})


def words(text: str) -> str:
    return " ".join(text.split())


def test_the_erasure_texts_say_what_was_done_when_and_where_to_complain() -> None:
    english, dutch = notice().render(), notice(language="nl").render()

    assert "(reference dsr-0042). The erasure was completed on 1 March 2026, 12:05 (UTC)." \
        in words(english.body)
    assert "(kenmerk dsr-0042). Het wissen was voltooid op 1 maart 2026, 12:05 (UTC)." \
        in words(dutch.body)
    assert "supervisory authority (Article 77 GDPR)" in words(english.body)
    assert "toezichthoudende autoriteit (artikel 77 AVG)" in words(dutch.body)
    assert "Article 79" not in english.body  # a court is named for refusals only (Art. 12(4))


def test_the_extension_texts_say_the_new_deadline_why_and_where_to_complain() -> None:
    due = datetime(2026, 5, 1, 12, 5, tzinfo=UTC)
    english = notice(kind="extension", completed_at=due, reason="Many systems.").render()
    dutch = notice(kind="extension", completed_at=due, reason="Veel systemen.",
                   language="nl").render()
    assert "answer it by 1 May 2026, 12:05 (UTC) at the latest" in words(english.body)
    assert "uiterlijk op 1 mei 2026, 12:05 (UTC)" in words(dutch.body)
    assert "The reason:\nMany systems." in english.body and "De reden:\nVeel" in dutch.body
    assert "(Article 77 GDPR)" in words(english.body)


def test_the_completion_time_is_shown_in_its_own_zone() -> None:
    winter = timezone(timedelta(hours=1))
    rendered = notice(completed_at=DONE.astimezone(winter), language="nl").render()
    assert "1 maart 2026, 13:05 (UTC+01:00)" in words(rendered.body)


def test_the_date_never_breaks_across_lines() -> None:
    long_name = "Stichting Klantenservice en Ledenadministratie Noord-Brabant"
    for language, date in (("en", "1 March 2026, 12:05 (UTC)"),
                           ("nl", "1 maart 2026, 12:05 (UTC)")):
        lines = notice(organisation=long_name, language=language).render().body.splitlines()
        assert any(date in line.replace("\u00a0", " ") for line in lines)
        assert all(len(line) <= 72 for line in lines)


def test_the_address_is_in_no_rendered_text() -> None:
    for language in ("en", "nl"):
        for kind, reason in (("erasure", ""), ("rejection", "No proof of identity."),
                             ("extension", "Many systems to search.")):
            rendered = notice(language=language, kind=kind, reason=reason).render()
            assert TO not in rendered.subject + rendered.body


def test_the_admins_line_breaks_in_a_reason_survive() -> None:
    body = notice(kind="rejection", reason="First line.\nSecond line.").render().body
    assert "The reason:\nFirst line.\nSecond line.\n" in body


@pytest.mark.parametrize(("changes", "complaint"), [
    ({"completed_at": datetime(2026, 3, 1, 12, 5)}, "no timezone"),  # noqa: DTZ001
    ({"kind": "rejection"}, "needs the reason"),
    ({"kind": "extension"}, "needs the reason"),
    ({"reason": "because"}, "only a rejection"),
    ({"kind": "export"}, "kind must be one of"),
    ({"language": "de"}, "language must be one of"),
    ({"request_id": "dsr-1\r\nBcc: someone@example.org"}, "request_id must be one"),
    ({"organisation": " "}, "organisation must be one"),
    ({"kind": "rejection", "reason": "x" * 2001}, "at most 2000"),
])
def test_an_unusable_notice_is_refused(changes: dict[str, Any], complaint: str) -> None:
    with pytest.raises(BadInput, match=complaint):
        notice(**changes)


@pytest.mark.parametrize("address", [
    f"{TO}\r\nBcc: someone@example.org", f"{TO}, other@example.org", f"Jan <{TO}>",
    "jan.jansen", "jan@localhost", f" {TO}",
])
def test_anything_but_one_plain_address_is_refused_without_repeating_it(address: str) -> None:
    with pytest.raises(BadInput) as caught:
        notice(to=address)
    assert "jan" not in str(caught.value)


def test_the_address_is_kept_out_of_the_notices_repr() -> None:
    assert TO not in repr(notice())


def test_no_setting_means_no_notifier() -> None:
    assert build_notifier() is None


def test_an_smtp_host_builds_the_smtp_notifier() -> None:
    built = build_notifier(smtp_host="mail.acme.example", smtp_from="privacy@acme.example",
                           smtp_username="", smtp_password="", smtp_ca_file="")
    assert isinstance(built, SmtpNotifier)


def test_a_webhook_url_builds_the_webhook_notifier() -> None:
    built = build_notifier(webhook_url="https://mail.acme.example/notices",
                           webhook_secret="s3cret")
    assert isinstance(built, WebhookNotifier)


@pytest.mark.parametrize(("settings", "complaint"), [
    ({"smtp_host": "mail.acme.example", "smtp_from": "privacy@acme.example",
      "webhook_url": "https://mail.acme.example/notices", "webhook_secret": "s"}, "not both"),
    ({"smtp_host": "mail.acme.example"}, "sender"),
    ({"webhook_url": "https://mail.acme.example/notices"}, "secret is empty"),
])
def test_a_half_or_doubly_configured_notifier_refuses_to_start(settings: dict[str, Any],
                                                               complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        build_notifier(**settings)
