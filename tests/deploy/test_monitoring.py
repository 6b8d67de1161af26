"""deploy/prometheus and deploy/grafana: the rules pass `promtool check rules`, every alert
has unit tests that pass and that fail once the alert can no longer fire, the dashboard's
queries parse, and every metric the alerts, the dashboard and KEDA use is exported by the
real app's /metrics."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.conftest import DEPLOY, ROOT, tool
from tests.timing import scaled

ALERTS = DEPLOY / "prometheus" / "alerts.yaml"
ALERT_TESTS = DEPLOY / "prometheus" / "alerts_test.yaml"
DASHBOARD = json.loads((DEPLOY / "grafana" / "privasync.json").read_text())
RULES = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("promtool"), *args], capture_output=True, text=True,
                          timeout=scaled(120))


def test_promtool_checks_the_rules():
    done = _promtool("check", "rules", str(ALERTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(RULES)} rules found" in done.stdout


def test_every_alert_has_a_runbook_and_the_alerts_the_issue_lists_exist():
    names = {r["alert"] for r in RULES}
    assert {"PrivasyncPropagationP99OverObjective", "PrivasyncDeadJobs",
            "PrivasyncOldestPendingJobTooOld", "PrivasyncRequestsNearDeadline",
            "PrivasyncRequestsOverdue", "PrivasyncRequestsIdentityOverdue",
            "PrivasyncPartnerAcksOverdue",
            "PrivasyncHeartbeatStale", "PrivasyncVendorThrottled",
            "PrivasyncLedgerVerificationFailed"} <= names
    for rule in RULES:
        assert len(rule["annotations"]["runbook"]) > 40, rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical")


def test_the_alert_unit_tests_pass():
    done = _promtool("test", "rules", str(ALERT_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_is_unit_tested_firing():
    tested = {case["alertname"] for test in yaml.safe_load(ALERT_TESTS.read_text())["tests"]
              for case in test["alert_rule_test"] if case["exp_alerts"]}
    assert tested == {r["alert"] for r in RULES}


@pytest.mark.parametrize("alert", [r["alert"] for r in RULES])
def test_the_unit_tests_fail_when_an_alert_cannot_fire(alert: str, tmp_path: Path):
    doc = yaml.safe_load(ALERTS.read_text())
    for rule in doc["groups"][0]["rules"]:
        if rule["alert"] == alert:
            rule["expr"] = "vector(1) > 2"
    (tmp_path / "alerts.yaml").write_text(yaml.safe_dump(doc))
    (tmp_path / "alerts_test.yaml").write_text(ALERT_TESTS.read_text())
    done = _promtool("test", "rules", str(tmp_path / "alerts_test.yaml"))
    assert done.returncode == 1 and alert in done.stdout + done.stderr


# -- the dashboard ------------------------------------------------------------------------
def _panels() -> Iterator[dict[str, Any]]:
    for panel in DASHBOARD["panels"]:
        yield panel
        yield from panel.get("panels", [])


def _exprs() -> list[str]:
    return [t["expr"] for p in _panels() for t in p.get("targets", [])]


def test_the_dashboard_is_well_formed():
    assert DASHBOARD["uid"] == "privasync-overview" and DASHBOARD["title"]
    ids = [p["id"] for p in _panels()]
    assert len(ids) == len(set(ids))
    variables = {v["name"]: v for v in DASHBOARD["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    for panel in _panels():
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]) and panel["gridPos"]["w"] <= 24
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}" and panel["targets"]
    titles = " / ".join(p["title"].lower() for p in _panels())
    for wanted in ("events in by source", "propagation latency by destination",
                   "pending and dead jobs", "vendor rate budget used", "requests by state",
                   "requests by deadline"):
        assert wanted in titles


def test_promtool_parses_every_dashboard_query(tmp_path: Path):
    rules = [{"record": f"privasync:panel_{i}",
              "expr": re.sub(r"\$__(rate_interval|interval|range)", "5m", expr)}
             for i, expr in enumerate(_exprs())]
    path = tmp_path / "panels.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    done = _promtool("check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    rules[0]["expr"] += ")"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    assert _promtool("check", "rules", str(path)).returncode == 1  # the check bites


def used_metric_names() -> set[str]:
    keda = yaml.safe_load((DEPLOY / "k8s" / "keda-scaledobject.yaml").read_text())
    queries = [*_exprs(), *(r["expr"] for r in RULES),
               *(t["metadata"]["query"] for t in keda["spec"]["triggers"])]
    return {name for q in queries for name in re.findall(r"\bprivasync_[a-z0-9_]+\b", q)}


# -- against the real app -----------------------------------------------------------------
@pytest.fixture
def scraped(tmp_path: Path) -> Iterator[str]:
    """/metrics of the one-machine app after a change went everywhere and the scheduler
    checked the ledger."""
    from privasync.demo.stack import start_stack
    from tests.e2e.conftest import mc_status, seed, settle, wait_for

    stack = start_stack(database_url=f"sqlite:///{tmp_path}/privasync.db", var_dir=tmp_path,
                        mappings_dir=ROOT / "mappings", poll_seconds=0.3)
    try:
        contact = seed(stack, "dashboard.person@example.org")
        stack.emulators.hubspot.ui_unsubscribe_all(contact)
        wait_for("Mailchimp unsubscribed", lambda: mc_status(
            stack, "dashboard.person@example.org") == "unsubscribed")
        settle(stack)
        wait_for("the ledger checked", lambda: "privasync_ledger_verified " in requests.get(
            f"{stack.url}/metrics", timeout=scaled(10)).text)
        yield requests.get(f"{stack.url}/metrics", timeout=scaled(10)).text
    finally:
        stack.stop()


def exported_names(text: str) -> set[str]:
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names |= {s.name for s in family.samples}
        if family.type == "counter":
            names.add(family.name + "_total")
    return names


def test_every_metric_the_alerts_dashboard_and_keda_use_is_exported(scraped: str):
    used = used_metric_names()
    assert len(used) >= 15
    assert used - exported_names(scraped) == set()
    assert "dashboard.person" not in scraped and "example.org" not in scraped
    assert re.search(r'privasync_heartbeat_age_seconds\{component="worker"\} \d', scraped)
    assert re.search(r'privasync_ledger_verified 1\.0', scraped)

