"""The fault suite's recovery times, as the bench reports them.

Runs ``tests/faults`` (the same cases ``make test`` runs: a deployment's processes on
PostgreSQL and a Redis of their own, each fault injected and then stopped) and collects
each case's recovery time: from the moment the fault stopped until every system holds
every change and no job is pending or running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[1]


def run(timeout: float = 1800.0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="privasync-faults-") as tmp:
        report = Path(tmp) / "recovery.jsonl"
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/faults"],
            cwd=ROOT, env=os.environ | {"PRIVASYNC_TEST_FAULTS_REPORT": str(report)},
            capture_output=True, text=True, timeout=timeout)
        cases = [json.loads(line) for line in report.read_text().splitlines()] \
            if report.exists() else []
    summary = (done.stdout.strip().splitlines() or [""])[-1]
    return {"passed": done.returncode == 0, "summary": summary, "cases": cases,
            "runtime_seconds": round(time.monotonic() - started, 1)}


def table(result: dict[str, Any]) -> list[str]:
    lines = ["", "4. Faults: `pytest tests/faults` (API, applier, two workers and a scheduler as "
             "processes on PostgreSQL and their own Redis); recovery = fault stopped -> every "
             "change in every system, no job pending or running", "",
             "| case | recovery |", "|---|---|"]
    lines += [f"| {c['case']} {c['detail']} | {c['recovery_seconds']:.2f} s |"
              for c in result["cases"]]
    lines += ["", f"fault suite: {result['summary']} ({result['runtime_seconds']:.0f} s)"]
    return lines
