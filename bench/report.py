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
    return lambda b: _ms(b["latency"].get(name))


def _calls(vendor: str) -> Callable[[dict[str, Any]], str]:
    def show(b: dict[str, Any]) -> str:
        c = b["api_calls"][vendor]
        return f"{c['per_unsubscribe']:.3f} ({c['delivery_calls']})"
    return show


def _verified(b: dict[str, Any]) -> str:
    v = b["verified"]
    return (f"{v['salesforce HasOptedOutOfEmail']}/{v['mailchimp unsubscribed']}/"
            f"{v['partner withdrawn']} of {v['of']}")


def _deliveries(b: dict[str, Any]) -> str:
    d = b["webhook_deliveries"]
    return f"{d['batches']} ({d['events']}), {d['non_2xx']}"


def _jobs_left(b: dict[str, Any]) -> str:
    left: dict[str, int] = {}
    for key, n in b["jobs"].items():
        status = key.rsplit(":", 1)[1]
        if status not in ("done", "superseded"):
            left[status] = left.get(status, 0) + n
    return ", ".join(f"{n} {status}" for status, n in sorted(left.items())) or "none"


def _echo(b: dict[str, Any]) -> str:
    e = b["echo"]
    waited = f" (+{e['waited_seconds']:.0f} s)" if e["waited_seconds"] else " (no wait)"
    return f"{e['salesforce_events_read_back']} / {e['new_jobs_caused']}{waited}"


def _memory(b: dict[str, Any]) -> str:
    return ", ".join(f"{name} {mb:.0f}" for name, mb in sorted(b["peak_memory_mb"].items()))


def _ratio(b: dict[str, Any]) -> str:
    return f"{b['ingest']['events_per_s'] / max(b['floor']['events_per_s'], 1e-9):.2f}"


INGEST: list[Row] = [
    ("floor: events/s (batches refused)",
     lambda b: f"{b['floor']['events_per_s']:.0f} ({b['floor']['batches_failed']})"),
    ("floor: batch answered p50 / p99", lambda b: _ms(b["floor"]["batch_latency"])),
    ("privasync: events/s (batches refused)",
     lambda b: f"{b['ingest']['events_per_s']:.0f} ({b['ingest']['batches_failed']})"),
    ("privasync: batch answered p50 / p99", lambda b: _ms(b["ingest"]["batch_latency"])),
    ("privasync / floor", _ratio),
    ("all applied / delivered after",
     lambda b: f"{b['ingest']['applied_all_after_seconds']:.1f} / "
               f"{b['ingest']['delivered_all_after_seconds']:.1f} s"),
    ("jobs done by the end", lambda b: str(b["ingest"]["jobs_done_by_end"])),
    ("peak memory, MB", lambda b: _memory(b["ingest"])),
]
BURST: list[Row] = [
    ("webhook deliveries (events), refused", _deliveries),
    ("all webhooks accepted after", lambda b: f"{b['ingest_seconds']:.2f} s"),
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
     lambda b: str(b["api_calls"]["salesforce"]["polling_calls"])),
    ("burst wall time (click -> last update)", lambda b: f"{b['wall_seconds']:.2f} s"),
    ("outcome", lambda b: b["outcome"]),
    ("jobs done / not done", lambda b: f"{b['jobs_done']} / {_jobs_left(b)}"),
    ("HubSpot answers 429 in the window", lambda b: str(b["hubspot_statuses"].get("429", 0))),
    ("unsubscribes/s (all destinations)", lambda b: f"{b['unsubscribes_per_s']:.0f}"),
    ("peak memory, MB", _memory),
    ("SF read-back of our writes / new jobs", _echo),
]


def _per_erasure(vendor: str) -> Callable[[dict[str, Any]], str]:
    return lambda b: (f"{b['api_calls'][vendor]['per_erasure']:.2f} "
                      f"({b['api_calls'][vendor]['calls']})")


ERASURE: list[Row] = [
    ("requests recorded (answers)", lambda b: ", ".join(
        f"{n}x{s}" for s, n in sorted(b["answers"].items()))),
    ("recording answered p50 / p99", lambda b: _ms(b["answer_latency"])),
    ("all recorded after", lambda b: f"{b['recorded_seconds']:.1f} s"),
    ("all completed after", lambda b: f"{b['wall_seconds']:.1f} s"),
    ("erasures completed per minute", lambda b: f"{b['erasures_per_minute']:.0f}"),
    ("request -> completed p50 / p99", lambda b: _ms(b["request_to_completed"])),
    ("requests by status", lambda b: ", ".join(f"{k} {v}" for k, v in
                                               sorted(b["requests"].items()))),
    ("confirmations mailed", lambda b: str(b["confirmations_mailed"])),
    ("still held HS/SF/MC/partner", lambda b: "/".join(
        str(b["still_held"][k]) for k in ("hubspot", "salesforce", "mailchimp",
                                          "partner_pending"))),
    ("calls/erasure HubSpot (total)", _per_erasure("hubspot")),
    ("calls/erasure Salesforce (total)", _per_erasure("salesforce")),
    ("calls/erasure Mailchimp (total)", _per_erasure("mailchimp")),
    ("calls/erasure partner (total)", _per_erasure("partner")),
    ("HubSpot answers 429", lambda b: str(b["hubspot_429"])),
    ("peak memory, MB", _memory),
]


def _share(key: str) -> Callable[[dict[str, Any]], str]:
    return lambda b: "-" if b.get(key) is None else f"{b[key] * 100:.1f} %"


BACKLOG: list[Row] = [
    ("HubSpot jobs by status", lambda b: ", ".join(f"{k} {v}" for k, v in
                                                   sorted(b["jobs"].items()))),
    ("all done after", lambda b: f"{b['wall_seconds']:.1f} s"),
    ("first HubSpot call after", lambda b: f"{b['first_call_after_seconds']:.1f} s"),
    ("HubSpot calls (span first->last)", lambda b: f"{b['calls']} ({b['span_seconds']:.1f} s)"),
    ("calls the window allowed in the span", lambda b: str(b["allowed"])),
    ("budget used over the run", _share("used_over_run")),
    ("slot reuse, W / mean(t[i] - t[i-100])", _share("slot_reuse")),
    ("shortest t[i] - t[i-100]", lambda b: f"{b['min_gap_seconds']:.3f} s"),
    ("HubSpot answers 429 (all privasync's)", lambda b: str(b["hubspot_429"])),
    ("peak memory, MB", _memory),
]


def _cell(row: Row, result: dict[str, Any]) -> str:
    try:
        return str(row[1](result))
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return "-"


def _section(title: str, rows: list[Row], columns: list[tuple[str, dict[str, Any]]]) -> list[str]:
    width = 40
    cells = [[_cell(row, result) for row in rows] for _, result in columns]
    cols = [max(24, len(label), *(len(c) for c in col)) + 3
            for (label, _), col in zip(columns, cells, strict=True)]
    lines = ["", title, f"{'':<{width}}" + "".join(
        f"{label:>{w}}" for (label, _), w in zip(columns, cols, strict=True))]
    for i, row in enumerate(rows):
        lines.append(f"  {row[0]:<{width - 2}}" + "".join(
            f"{col[i]:>{w}}" for col, w in zip(cells, cols, strict=True)))
    return lines


def table(results: dict[str, dict[str, Any]], config: dict[str, Any]) -> str:
    lines: list[str] = []
    ingest = [(LABELS.get(n, n), r) for n, r in results.items() if "ingest" in r]
    if ingest:
        lines += _section(f"1. Webhook ingest: {config['events']} signed hs_email_optout "
                          f"events in batches of 100, {config['clients']} client processes; "
                          "the floor verifies, parses and stores the raw batch, nothing else",
                          INGEST, ingest)
    burst = [(f"{LABELS.get(n, n)}{' (naive)' if v == 'naive' else ''}", r[v])
             for n, r in results.items() for v in ("burst", "naive") if v in r]
    if burst:
        lines += _section(f"2. Burst: {config['people']} people unsubscribed in HubSpot, "
                          f"Mailchimp answering in {config['mailchimp_latency'] * 1000:.0f} ms",
                          BURST, burst)
    erasing = [(LABELS.get(n, n), r["erasure"]) for n, r in results.items() if "erasure" in r]
    if erasing:
        lines += _section(f"3. Erasure: {config['erasures']} requests recorded over the admin "
                          "API, until erased and verified in HubSpot, Salesforce and Mailchimp, "
                          "acknowledged by the partner and the person mailed",
                          ERASURE, erasing)
    backlog = [(LABELS.get(n, n), r["backlog"]) for n, r in results.items() if "backlog" in r]
    if backlog:
        lines += _section(f"4. Backlog: {config['backlog']} withdrawals waiting for HubSpot "
                          "(100 calls per rolling 10 s, answering in "
                          f"{config['hubspot_latency'] * 1000:.0f} ms), two worker processes "
                          "sharing the window through Redis", BACKLOG, backlog)
    lines += ["", "Latency: webhook accepted (jobs.origin_received_at) -> destination updated "
              "(jobs.done_at).",
              "calls/unsub: vendor API calls per unsubscribe, seeding and Salesforce polling "
              "excluded. naive: one vendor call per change, no bulk read of the audience.",
              "HubSpot: the unsubscribes originate there, so privasync writes nothing back."]
    return "\n".join(lines)
