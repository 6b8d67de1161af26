"""Retry budgets per destination from the environment, and readiness that reports dead
jobs but fails on them only when told to."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from sqlalchemy import update

from core import outbox
from core.db import jobs
from core.delivery import Budget
from core.errors import ConfigError
from privasync.app.bootstrap import retry_budgets
from privasync.app.settings import Settings
from privasync.demo.stack import Stack
from tests.timing import scaled

NAMES = {"hubspot", "salesforce", "partner:contact_centre", "notifier"}


def test_each_destination_takes_its_own_budget_and_backoff_from_the_environment(
        monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PRIVASYNC_WORKER__MAX_ATTEMPTS", "7")
    monkeypatch.setenv("PRIVASYNC_RETRY__SALESFORCE__MAX_ATTEMPTS", "3")
    monkeypatch.setenv("PRIVASYNC_RETRY__SALESFORCE__MAX_AGE_SECONDS", "600")
    monkeypatch.setenv("PRIVASYNC_RETRY__PARTNER_CONTACT_CENTRE__MIN_BACKOFF_SECONDS", "40")
    monkeypatch.setenv("PRIVASYNC_RETRY__PARTNER_CONTACT_CENTRE__MAX_BACKOFF_SECONDS", "50")
    budgets, backoffs = retry_budgets(Settings(), NAMES)
    assert budgets == {"salesforce": Budget(3, timedelta(seconds=600)),
                       "partner:contact_centre": Budget(7, timedelta(days=1))}
    assert set(backoffs) == {"partner:contact_centre"}
    assert 40 <= backoffs["partner:contact_centre"](1, None) <= 50
    assert backoffs["partner:contact_centre"](1, 120.0) == 120.0  # Retry-After wins


def test_a_budget_for_a_destination_nobody_configured_is_refused_by_name(
        monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PRIVASYNC_RETRY__SALESFROCE__MAX_ATTEMPTS", "3")
    with pytest.raises(ConfigError, match="PRIVASYNC_RETRY__SALESFROCE__.*salesforce"):
        retry_budgets(Settings(), NAMES)


def test_a_misspelt_budget_setting_is_refused():
    with pytest.raises(ValueError, match="retry.hubspot.max_attempt"):
        Settings.model_validate({"retry": {"hubspot": {"max_attempt": 3}}})


def test_readiness_reports_dead_jobs_but_fails_on_them_only_when_told(embedded: Stack):
    now = embedded.container.clock()
    with embedded.container.engine.begin() as conn:  # a job given up on, as a worker leaves it
        outbox.add(conn, now, [(outbox.CONSENT, "salesforce", "subject-1", now, None)])
        conn.execute(update(jobs).values(status=outbox.DEAD, done_at=now))
    answer = requests.get(f"{embedded.url}/readyz", timeout=scaled(10))
    assert answer.status_code == 200, answer.text
    assert answer.json()["checks"]["dead_jobs"] == {"ok": True, "dead": {"salesforce": 1}}
    embedded.container.settings.readyz_fail_on_dead_jobs = True
    answer = requests.get(f"{embedded.url}/readyz", timeout=scaled(10))
    assert answer.status_code == 503
    assert answer.json()["failing"] == ["dead_jobs"]
    assert answer.json()["checks"]["dead_jobs"]["reason"] == "dead jobs: salesforce 1"
