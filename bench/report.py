"""The side-by-side table on stdout, and the machine it ran on."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from bench.backends import LABELS

Row = tuple[str, Callable[[dict[str, Any]], Any]]


def machine() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            model = next((line.split(":", 1)[1].strip() for line in info
                          if line.startswith("model name")), "")
    except OSError:
        pass
    try:
        memory = subprocess.run(["free", "-h"], capture_output=True, text=True, timeout=5,
                                check=False).stdout.splitlines()[1].split()[1]
    except (OSError, IndexError, subprocess.SubprocessError):
        memory = "?"
    return {"git": _git(), "nproc": os.cpu_count(), "cpu_model": model, "memory_total": memory,
            "python": sys.version.split()[0], "platform": platform.platform(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}


def _git() -> str:
    """HEAD and whether the working tree had changes (the figures belong to that tree)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=5, check=False).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5,
                               check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"
    return f"{head or '?'}{' + uncommitted changes' if dirty else ''}"


def _ms(d: dict[str, Any] | None) -> str:
    if not d or d.get("p50_ms") is None:
        return "-"
    return f"{d['p50_ms']:.0f} / {d['p99_ms']:.0f} ms"


def _lat(name: str) -> Callable[[dict[str, Any]], str]:
    return lambda b: _ms(b["burst"]["latency"].get(name))


def _calls(vendor: str) -> Callable[[dict[str, Any]], str]:
    def show(b: dict[str, Any]) -> str:
        c = b["burst"]["api_calls"][vendor]
        return f"{c['per_unsubscribe']:.3f} ({c['delivery_calls']})"
    return show


def _verified(b: dict[str, Any]) -> str:
    v = b["burst"]["verified"]
    return (f"{v['salesforce HasOptedOutOfEmail']}/{v['mailchimp unsubscribed']}/"
            f"{v['partner withdrawn']} of {v['of']}")


def _deliveries(b: dict[str, Any]) -> str:
    d = b["burst"]["webhook_deliveries"]
    return f"{d['batches']} ({d['events']}), {d['non_2xx']}"


def _jobs_left(b: dict[str, Any]) -> str:
    left: dict[str, int] = {}
    for key, n in b["burst"]["jobs"].items():
        status = key.rsplit(":", 1)[1]
        if status != "done":
            left[status] = left.get(status, 0) + n
    return ", ".join(f"{n} {status}" for status, n in sorted(left.items())) or "none"


def _echo(b: dict[str, Any]) -> str:
    e = b["burst"]["echo"]
    waited = f" (+{e['waited_seconds']:.0f} s)" if e["waited_seconds"] else " (no wait)"
    return f"{e['salesforce_events_read_back']} / {e['new_jobs_caused']}{waited}"


INGEST: list[Row] = [
    ("events accepted / sent", lambda b: f"{b['ingest']['events_accepted']} / "
                                         f"{b['ingest']['events_sent']}"),
    ("batches (100 events) ok / failed", lambda b: f"{b['ingest']['batches_ok']} / "
                                                   f"{b['ingest']['batches_failed']}"),
    ("duration", lambda b: f"{b['ingest']['seconds']:.2f} s"),
    ("events/s", lambda b: f"{b['ingest']['events_per_s']:.0f}"),
    ("batches/s", lambda b: f"{b['ingest']['batches_per_s']:.1f}"),
    ("batch response p50 / p99", lambda b: _ms(b["ingest"]["batch_latency"])),
    ("jobs created (done by the end)", lambda b: f"{b['ingest']['jobs_created']} "
                                                 f"({b['ingest']['jobs_done_by_end']})"),
    ("app process CPU", lambda b: f"{b['ingest']['app_process_cpu_seconds']:.1f} s"),
]
BURST: list[Row] = [
    ("webhook deliveries (events), refused", _deliveries),
    ("all webhooks accepted after", lambda b: f"{b['burst']['ingest_seconds']:.2f} s"),
    ("latency p50/p99 salesforce", _lat("salesforce")),
    ("latency p50/p99 mailchimp", _lat("mailchimp")),
    ("latency p50/p99 partner", _lat("partner:contact_centre")),
    ("latency p50/p99 all (per person)", _lat("all destinations (per person)")),
    ("click -> all updated p50/p99", _lat("from the click (per person)")),
    ("end state SF/MC/partner", _verified),
    ("calls/unsub HubSpot (total)", _calls("hubspot")),
    ("calls/unsub Salesforce (total)", _calls("salesforce")),
    ("calls/unsub Mailchimp (total)", _calls("mailchimp")),
    ("calls/unsub partner (total)", _calls("partner")),
    ("Salesforce polling calls (apart)",
     lambda b: str(b["burst"]["api_calls"]["salesforce"]["polling_calls"])),
]
WALL: list[Row] = [
    ("burst wall time (click -> last update)", lambda b: f"{b['burst']['wall_seconds']:.2f} s"),
    ("outcome", lambda b: b["burst"]["outcome"]),
    ("jobs done", lambda b: str(b["burst"]["jobs_done"])),
    ("jobs not done", _jobs_left),
    ("other jobs in the window (not consent)",
     lambda b: str(sum(b["burst"]["other_jobs"].values()))),
    ("HubSpot answers 429 in the window",
     lambda b: str(b["burst"]["hubspot_statuses"].get("429", 0))),
    ("jobs/s", lambda b: f"{b['burst']['jobs_per_s']:.0f}"),
    ("unsubscribes/s (all destinations)", lambda b: f"{b['burst']['unsubscribes_per_s']:.0f}"),
    ("app process CPU during burst", lambda b: f"{b['burst']['app_process_cpu_seconds']:.1f} s"),
    ("SF read-back of our writes / new jobs", _echo),
]


def _cell(row: Row, result: dict[str, Any]) -> str:
    try:
        return str(row[1](result))
    except (KeyError, TypeError, ValueError):
        return "-"


def table(results: dict[str, dict[str, Any]], config: dict[str, Any]) -> str:
    names = list(results)
    width = 40
    cols = [max(28, len(LABELS.get(n, n)) + 2) for n in names]
    lines = ["", f"{'':<{width}}" + "".join(f"{LABELS.get(n, n):>{w}}" for n, w in
                                              zip(names, cols, strict=True))]
    sections = [(f"1. Webhook ingest ({config['events']} signed hs_email_optout events, "
                 f"{config['clients']} client processes)", INGEST, "ingest"),
                (f"2. Burst: {config['people']} people unsubscribed in HubSpot", BURST, "burst"),
                ("3. Burst totals", WALL, "burst")]
    for title, rows, key in sections:
        lines += ["", title]
        for row in rows:
            cells = [_cell(row, results[n]) if key in results[n] else "skipped" for n in names]
            lines.append(f"  {row[0]:<{width - 2}}" + "".join(
                f"{c:>{w}}" for c, w in zip(cells, cols, strict=True)))
    lines += ["", "Latency: webhook accepted (jobs.origin_received_at) -> destination updated "
              "(jobs.done_at).",
              "calls/unsub: vendor API calls per unsubscribe, seeding and Salesforce polling "
              "excluded.",
              _hubspot_note(results)]
    return "\n".join(lines)


def _hubspot_note(results: dict[str, dict[str, Any]]) -> str:
    calls = [r["burst"]["api_calls"]["hubspot"]["delivery_calls"] for r in results.values()
             if "burst" in r]
    if not any(calls):
        return ("HubSpot: the unsubscribes originate there, so privasync writes nothing back; "
                "its 100 req/10 s limit (emulated) is not touched.")
    return ("HubSpot: the unsubscribes originate there and cause no write back; the HubSpot "
            f"calls counted ({'/'.join(map(str, calls))}) come from other jobs in the window "
            "(JSON: other_jobs, by_endpoint) and count against its 100 req/10 s limit.")
