"""``python -m bench.soak``: privasync under sustained mixed traffic, window by window.

privasync runs as production does on PostgreSQL + Redis (bench/deploy.py: api, scheduler
with the applier, two workers, each its own process) against the in-process emulators,
which hold ``--people`` people known to privasync (HubSpot, Salesforce, Mailchimp). Client
processes post signed HubSpot webhook batches of 100 at ``--rate`` events/s (as fast as
privasync answers when it cannot take that): opt-outs and opt-ins on the three opt-out
switches, record changes (``city``, ``firstname``) and ``contact.creation`` for contacts
the bench creates in the HubSpot emulator just before. One erasure is recorded over the
admin API every ``--erasure-every`` seconds for a person the webhooks never name.

At the end of every ``--window`` a line: events accepted/s and batch answer p99 (batches
answered in the window), propagation p99 (``jobs.done_at - jobs.origin_received_at`` of
consent and record jobs done in the window: webhook accepted -> destination updated, as
bench/burst.py measures it), the inbox and outbox (pending + running jobs) backlogs, dead
jobs, the Salesforce calls made and the emulator's daily allocation left (``--salesforce-
allocation``), what privasync's /metrics says of it, the dispatches rate limits put off
(bench/limits.py), every process's VmRSS and the largest PostgreSQL tables. After the load,
up to ``--drain`` seconds for the backlogs to empty; then the verdict (``verdict``) and the
whole report as JSON in var/bench/soak.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import multiprocessing as mp
import os
import queue
import random
import shlex
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from bench import backends, deploy, erasure, limits, load, report, stats, watch
from bench.burst import learn, seed_vendors
from bench.run import DEFAULT_POSTGRES, DEFAULT_REDIS
from core.db import make_engine
from privasync.demo.stack import Emulators
from privasync.emulators.hubspot import HubSpotEmulator
from privasync.emulators.salesforce import SalesforceEmulator

BATCH = 100
KINDS, WEIGHTS = ("optout", "optin", "change", "new"), (50, 20, 25, 5)  # % of events
SWITCHES = ("hs_email_optout_101", "hs_email_optout_102", "hs_email_optout")
FIELDS = ("city", "firstname")
FLAT, RSS_GROWTH = 1.20, 0.10  # last p99 <= 1.2 x first's; RSS < +10 % after window 1
NEAR_ZERO_SECONDS = 5.0  # a backlog under what arrives in 5 s is "near zero"
# The Salesforce org's daily API allocation. Salesforce's "API Request Limits and
# Allocations" (developer.salesforce.com/docs/platform/salesforce-app-limits-cheatsheet/
# guide/salesforce-app-limits-platform-api.html), per rolling 24 h: Developer Edition
# 15,000 (the emulator's default); Enterprise Edition 100,000 + 1,000 per Salesforce
# licence; Unlimited and Performance 100,000 + 5,000 per licence. Here an Enterprise org
# with 100 licences. The emulator counts it down and never frees any, so the hour must fit
# in it above privasync's 10 % reserve (180,000 calls). The first hour at 700 events/s
# spent 13,500 calls in about 30 minutes, polls included (about 5 calls a poll, every 2 s):
# about 0.01 a webhook event, so at 2,000 events/s about 80,000 in the hour. (A day at that
# rate would need an org of several hundred Unlimited licences, or API add-ons.)
SALESFORCE_ALLOCATION = 100_000 + 100 * 1_000


class IndexedHubSpot(HubSpotEmulator):
    """Finds a contact by e-mail in a dict, not by scanning them all: the soak creates
    contacts all along. Only ``_create`` gives an address here (the soak edits none)."""

    def __init__(self) -> None:
        super().__init__()
        self._by_email: dict[str, str] = {}

    def _create(self, given: Any, source: str, *, blocklisted: bool = False) -> Any:
        contact = super()._create(given, source, blocklisted=blocklisted)
        self._by_email[contact.properties["email"]] = contact.id
        return contact

    def _find_email(self, email: str) -> Any:
        found = self._contacts.get(self._by_email.get(email.lower(), ""))
        ok = found is not None and found.archived_ms is None \
            and found.properties.get("email") == email.lower()
        return found if ok else None


def _event(rng: random.Random, people: list[int], fresh: Any, event_id: int) -> dict[str, Any]:
    now_ms = int(time.time() * 1000)
    kind = rng.choices(KINDS, WEIGHTS)[0]
    if kind == "new":
        try:
            people.append(fresh.get_nowait())
            return load.creation_event(people[-1], event_id, now_ms)
        except queue.Empty:
            kind = "optout"  # the bench has not created the next contact yet
    contact = rng.choice(people)
    if kind == "change":
        name = rng.choice(FIELDS)
        return load.property_event(contact, event_id, now_ms, name, f"{name}-{event_id}")
    return load.property_event(contact, event_id, now_ms, rng.choice(SWITCHES),
                               "true" if kind == "optout" else "false")


def _client(index: int, url: str, secret: str, people: list[int], interval: float,
            until: float, fresh: Any, out: Any) -> None:
    """A batch every ``interval`` s (at once while behind) until ``until``; per batch
    (answered at, HTTP status, events accepted, seconds) on ``out``."""
    import requests

    rng, ids = random.Random(index), itertools.count(index * 10**12 + 1)
    due = time.time()
    with requests.Session() as session:
        while (now := time.time()) < until:
            time.sleep(max(0.0, due - now))
            due = max(due + interval, time.time() - interval)  # behind: no catch-up burst
            body, headers = load.sign(url, secret, [_event(rng, people, fresh, next(ids))
                                                    for _ in range(BATCH)])
            sent = time.time()
            try:
                answer = session.post(url, data=body, headers=headers, timeout=60)
                status = answer.status_code
                accepted = int(answer.json().get("accepted", 0)) if status == 200 else 0
            except (requests.RequestException, ValueError):
                status, accepted = 0, 0
            out.put((time.time(), status, accepted, time.time() - sent))


def _feed(hubspot: HubSpotEmulator, queues: list[Any], ahead: int, made: list[int],
          stop: threading.Event) -> None:
    """Create contacts in HubSpot before their ``contact.creation`` is sent, keeping
    ``ahead`` ready for each client."""
    while not stop.wait(0.2):
        for q in queues:
            while q.qsize() < ahead:
                q.put(int(hubspot.create_contact(f"soak-new{len(made)}@example.com")))
                made.append(1)


def _erase(url: str, token: str, addresses: list[str], every: float, answers: list[Any],
           stop: threading.Event) -> None:
    """One erasure request every ``every`` s: (HTTP status, seconds) of each answer."""
    for address in addresses:
        answers.extend(erasure._ask(url, token, [address]))
        if stop.wait(every):
            return


def _collect(out: Any, batches: list[tuple[float, int, int, float]],
             stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            batches.append(out.get(timeout=0.2))
        except queue.Empty:
            continue


def _window(n: int, t0: float, start: float, end: float, batches: list[Any], engine: Engine,
            deployment: deploy.Deployment) -> dict[str, Any]:
    ok = [b for b in batches if start <= b[0] < end and b[1] == 200]
    accepted = sum(b[2] for b in ok)
    w = {"window": n, "from_s": round(start - t0, 1), "to_s": round(end - t0, 1),
         "batches": len([b for b in batches if start <= b[0] < end]),
         "accepted_per_s": round(accepted / (end - start), 1),
         "batch_p99_ms": stats.summary_ms([b[3] for b in ok])["p99_ms"],
         **watch.database(engine, datetime.fromtimestamp(start, UTC),
                          datetime.fromtimestamp(end, UTC)), "rss_mb": deployment.rss_mb()}
    w["batches_refused"] = w["batches"] - len(ok)
    w["open_jobs"] = w["jobs_pending"] + w["jobs_running"]
    w["arriving_per_s"] = {"inbox_events": round(sum(w["inbox_arrived_events"].values())
                                                 / (end - start), 1),
                           "open_jobs": round(sum(w["jobs_created"].values()) / (end - start), 1)}
    return w


def _line(w: dict[str, Any]) -> str:
    """The window's line: rates, p99s, backlogs, vendor limits, memory, the four largest
    tables."""
    seconds = w["to_s"] - w["from_s"]
    stored = ", ".join(f"{k} {n / seconds:.0f}" for k, n in w["inbox_arrived_events"].items()
                       if n)
    top = sorted(w["tables"].items(), key=lambda t: -t[1]["mb"])[:4]
    name = f"window {w['window']}" if w["window"] else "drain"
    return " | ".join([
        f"{name} [{w['from_s']:.0f}-{w['to_s']:.0f} s]",
        f"events/s accepted {w['accepted_per_s']:.0f}, stored {stored or 0}, "
        f"applied {w['applied_per_s']:.0f}",
        f"p99 batch {w['batch_p99_ms']} ms, propagation {w['propagation_p99_ms']} ms "
        f"({w['jobs_done_propagated']} jobs)",
        f"backlog inbox {w['inbox_rows']} rows ({w['inbox_events']} events), jobs "
        f"{w['jobs_pending']} pending + {w['jobs_running']} running; dead {w['jobs_dead']}",
        f"erasures {w['erasures']}", limits.line(w),
        "RSS MB " + ", ".join(f"{k} {v:.0f}" for k, v in w["rss_mb"].items()),
        "PG MB " + ", ".join(f"{k} {v['mb']:.1f} (idx {v['indexes_mb']:.1f}; rows "
                             f"{v['live_rows']} live, {v['dead_rows']} dead)" for k, v in top)])


def verdict(windows: list[dict[str, Any]], drained: dict[str, Any]) -> dict[str, Any]:
    """Pass/fail: backlogs held, p99s flat, RSS flat (module docstring; BENCHMARKS.md)."""
    checks: dict[str, Any] = {}
    for key in ("inbox_events", "open_jobs"):
        floors = [w["arriving_per_s"][key] * NEAR_ZERO_SECONDS for w in windows]
        seen = [w[key] for w in windows]
        grew = [i + 1 for i in range(1, len(seen)) if seen[i] > max(seen[i - 1], floors[i])]
        near_zero = sum(floors) / len(floors)
        checks[f"{key} held"] = {"ok": not grew, "at_window_ends": seen,
                                 "grew_in_windows": grew}
        checks[f"{key} drained"] = {"ok": drained[key] <= near_zero, "after_drain": drained[
            key], "near_zero_below": round(near_zero, 1)}
    for key in ("batch_p99_ms", "propagation_p99_ms"):
        first, last = windows[0][key], windows[-1][key]
        ratio = None if not first or last is None else round(last / first, 2)
        checks[f"{key} flat"] = {"ok": ratio is not None and ratio <= FLAT, "first": first,
                                 "last": last, "last_over_first": ratio}
    growth = {p: round(windows[-1]["rss_mb"].get(p, 0) / mb - 1, 3)
              for p, mb in windows[0]["rss_mb"].items()}
    checks["rss growth < 10 %"] = {"ok": all(g < RSS_GROWTH for g in growth.values()),
                                   "growth": growth}
    checks["salesforce allocation above its reserve"] = limits.check(windows)
    return {"pass": all(c["ok"] for c in checks.values()), "checks": checks}


def soak(args: argparse.Namespace, services: backends.Services) -> dict[str, Any]:
    emu = Emulators(hubspot=IndexedHubSpot(), salesforce=SalesforceEmulator(
        api_limit=args.salesforce_allocation)).start()
    mailbox = erasure.Mailbox()
    relay = erasure._Relay(mailbox)
    relay.start()
    try:
        return _soak(args, services, emu, relay.port) | {"mailed": len(mailbox.recipients)}
    finally:
        relay.stop()
        emu.stop()


@dataclass
class Traffic:
    """The client processes and the bench's threads: results, new contacts, erasures."""

    clients: list[Any]
    threads: list[threading.Thread] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    batches: list[tuple[float, int, int, float]] = field(default_factory=list)
    answers: list[tuple[int, float]] = field(default_factory=list)
    made: list[int] = field(default_factory=list)

    def finish(self) -> None:
        """Wait for the clients (their last answers read), then stop the threads."""
        for proc in self.clients:
            proc.join(timeout=90)
            if proc.is_alive():
                proc.terminate()
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)


def _traffic(args: argparse.Namespace, emu: Emulators, url: str, token: str,
             contacts: list[str], until: float) -> Traffic:
    ctx = mp.get_context("spawn")
    out, fresh = ctx.Queue(), [ctx.Queue() for _ in range(args.clients)]
    people, interval = [int(c) for c in contacts[:args.people]], BATCH * args.clients / args.rate
    t = Traffic([ctx.Process(target=_client, args=(
        i, f"{url}/webhooks/hubspot", emu.hubspot.client_secret, people[i::args.clients],
        interval, until, fresh[i], out), daemon=True) for i in range(args.clients)])
    ahead = max(2, int(args.rate * WEIGHTS[3] / 100 / args.clients))  # 1 s of new contacts
    erased = [backends.email(i) for i in range(args.people, len(contacts))]
    for f, a in ((_collect, (out, t.batches, t.stop)),
                 (_feed, (emu.hubspot, fresh, ahead, t.made, t.stop)),
                 (_erase, (url, token, erased, args.erasure_every, t.answers, t.stop))):
        t.threads.append(threading.Thread(target=f, args=a, daemon=True))
    for worker in [*t.clients, *t.threads]:
        worker.start()
    return t


def _soak(args: argparse.Namespace, services: backends.Services, emu: Emulators,
          smtp_port: int) -> dict[str, Any]:
    erasures = math.ceil(args.seconds / args.erasure_every)
    contacts, _ = seed_vendors(emu, args.people + erasures)  # the last: erased, not named
    with deploy.running("redis", services, emu, poll_seconds=args.poll_seconds,
                        extra=erasure.smtp_settings(smtp_port),
                        worker_threads=args.worker_threads, worker_metrics=True) as deployment:
        emu.partner.ack_url = f"{deployment.url}/webhooks/partners/contact_centre/ack"
        engine = make_engine(deployment.database_url)
        before = learn(engine, deployment.database_url, contacts, time.monotonic() + 600)
        autovacuum = watch.autovacuum(engine)
        vacuum = args.vacuum == "yes" or (args.vacuum == "auto" and not autovacuum)
        print(f"PostgreSQL autovacuum {'on' if autovacuum else 'off'}; VACUUM (ANALYZE) "  # noqa: T201
              f"after each window: {'yes' if vacuum else 'no'}", flush=True)
        t0 = time.time()
        until = t0 + args.seconds
        counted = limits.counters(emu.salesforce, deployment.metrics)
        traffic = _traffic(args, emu, deployment.url,
                           erasure._token(deployment.database_url), contacts, until)
        windows: list[dict[str, Any]] = []
        for n, start in enumerate(itertools.count(t0, args.window), 1):
            if start >= until:
                break
            end = min(start + args.window, until)
            time.sleep(max(0.0, end - time.time()) + 0.5)  # + answers still on the queue
            windows.append(_window(n, t0, start, end, traffic.batches, engine, deployment))
            now = limits.counters(emu.salesforce, deployment.metrics)
            windows[-1] |= limits.window(counted, now, end - start, emu.salesforce,
                                         deployment.metrics["api"])
            counted = now
            if vacuum:
                windows[-1]["vacuum_seconds"] = watch.vacuum(engine)
            print(_line(windows[-1]), flush=True)  # noqa: T201 - the report
        traffic.finish()
        drain_start = time.time()
        while time.time() - drain_start < args.drain and watch.left(engine):
            time.sleep(1.0)
        drained = _window(0, t0, drain_start, time.time(), [], engine, deployment)
        drained |= limits.window(counted, limits.counters(emu.salesforce, deployment.metrics),
                                 max(time.time() - drain_start, 1.0), emu.salesforce,
                                 deployment.metrics["api"])
        print(_line(drained), flush=True)  # noqa: T201
        engine.dispose()
    accepted = sum(b[2] for b in traffic.batches if b[1] == 200)
    return {"before_load": before, "autovacuum": autovacuum, "vacuum_each_window": vacuum,
            "windows": windows, "drain": drained, "events_accepted": accepted,
            "rate_reached_per_s": round(accepted / args.seconds, 1),
            "contacts_created": len(traffic.made), "erasure_answers": traffic.answers,
            "bench_process_rss_mb": deploy.memory_mb(os.getpid()),
            "verdict": verdict(windows, drained)}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; a one-line error (exit 2) for a figure that is not positive."""
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=3600.0, help="how long the load runs")
    p.add_argument("--window", type=float, default=300.0, help="seconds per reported window")
    p.add_argument("--rate", type=float, default=2000.0, help="webhook events/s offered")
    p.add_argument("--clients", type=int, default=2, help="client processes posting")
    p.add_argument("--people", type=int, default=10000, help="people known everywhere")
    p.add_argument("--erasure-every", type=float, default=60.0, help="seconds between erasures")
    p.add_argument("--drain", type=float, default=300.0,
                   help="at most this long after the load for the backlogs to empty")
    p.add_argument("--poll-seconds", type=float, default=2.0, help="Salesforce poll interval")
    p.add_argument("--salesforce-allocation", type=int, default=SALESFORCE_ALLOCATION,
                   help="the Salesforce emulator's daily API allocation (DailyApiRequests "
                        "Max), counted down over the run; default: an Enterprise org with "
                        "100 licences")
    p.add_argument("--worker-threads", type=int, default=4)
    p.add_argument("--vacuum", choices=("auto", "yes", "no"), default="auto",
                   help="VACUUM (ANALYZE) after each window; auto: when the server's "
                        "autovacuum is off (sizes then say what autovacuum would leave)")
    p.add_argument("--postgres-server", default=DEFAULT_POSTGRES)
    p.add_argument("--redis-url", default=DEFAULT_REDIS)
    p.add_argument("--json", type=Path, default=backends.VAR / "soak.json")
    args = p.parse_args(argv)
    if min(args.seconds, args.window, args.rate, args.clients, args.people,
           args.salesforce_allocation) <= 0:
        p.error("--seconds, --window, --rate, --clients, --people and "
                "--salesforce-allocation must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    services = backends.Services(args.postgres_server, args.redis_url)
    services.check_loopback()
    backends.quiet_logging()
    command = "python -m bench.soak " + shlex.join(argv if argv is not None else sys.argv[1:])
    machine = report.machine()
    print(f"privasync soak: {command.strip()}; {machine['nproc']} cores, load "  # noqa: T201
          f"{machine['load_average_at_start']}, tree {machine['git']}", flush=True)
    started = datetime.now(UTC)
    result = soak(args, services)
    machine["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    for name, check in result["verdict"]["checks"].items():
        figures = {k: v for k, v in check.items() if k != "ok"}
        print(f"{'PASS' if check['ok'] else 'FAIL'}  {name}: {figures}")  # noqa: T201
    print(f"rate offered {args.rate:.0f} events/s, reached {result['rate_reached_per_s']:.0f}; "  # noqa: T201
          f"soak {'PASSED' if result['verdict']['pass'] else 'FAILED'}; JSON in {args.json}")
    document = {"command": command.strip(), "at": started.isoformat(timespec="seconds"),
                "machine": machine, "config": vars(args) | {"mix_percent": dict(zip(
                    KINDS, WEIGHTS, strict=True))}, **result}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return 0 if result["verdict"]["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
