"""``python -m bench.run``: ingest throughput against a floor, unsubscribe propagation and
erasures carried everywhere, with privasync deployed as in production, per backend, and a
naive configuration beside it; then a backlog towards HubSpot and how much of its rate
budget it used (PostgreSQL + Redis only: the budget is shared by worker processes).

    python -m bench.run --events 10000 --people 1000 --erasures 1000 --backends sqlite,redis

Prints a side-by-side table and writes the same figures as JSON to
var/bench/latest.json. Everything runs on 127.0.0.1 and stops by itself: each
phase has a deadline (``--timeout``) after which it reports what it has.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import backends, backlog, burst, erasure, faults, ingest, report

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432"
DEFAULT_REDIS = "redis://127.0.0.1:6379/14"


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backends", default="sqlite,sqlite1,redis",
                   help="comma-separated: sqlite (`privasync serve` as README starts it: "
                        "SQLite, embedded broker, its API and background processes), sqlite1 "
                        "(the same with --single-process), sqlite2 (serve --api-only + "
                        "scheduler started by hand), redis "
                        "(api, scheduler, 2 workers: PostgreSQL and Redis), rabbitmq (the same "
                        "on PostgreSQL and RabbitMQ)")
    p.add_argument("--people", type=int, default=1000, help="people unsubscribed in the burst")
    p.add_argument("--events", type=int, default=10000,
                   help="webhook events posted in the ingest measurement (batches of 100)")
    p.add_argument("--clients", type=int, default=4, help="client processes posting webhooks")
    p.add_argument("--poll-seconds", type=float, default=2.0,
                   help="Salesforce poll interval (production default: 30)")
    p.add_argument("--worker-threads", type=int, default=4)
    p.add_argument("--mailchimp-latency", type=float, default=0.1,
                   help="seconds Mailchimp takes to answer each call in the burst")
    p.add_argument("--naive", default="redis",
                   help="backends that also run the burst with one vendor call per change "
                        "and no bulk read of the audience (empty: none)")
    p.add_argument("--cold", action="store_true",
                   help="burst: privasync does not know the HubSpot contact ids, so it looks "
                        "their e-mails up in HubSpot (rate-limited API)")
    p.add_argument("--echo", action="store_true",
                   help="after the burst, wait for the poller to read our Salesforce writes "
                        "back (next minute boundary + 2 polls) and count the jobs they cause")
    p.add_argument("--erasures", type=int, default=1000,
                   help="erasure requests recorded over the admin API in the erasure phase")
    p.add_argument("--erasure-backends", default="sqlite,redis",
                   help="backends that run the erasure phase (HubSpot's rate limit makes "
                        "each take about two minutes for 1,000)")
    p.add_argument("--backlog", type=int, default=10000,
                   help="withdrawals waiting for HubSpot in the backlog phase (PostgreSQL + "
                        "Redis, two worker processes, HubSpot's 100 calls per 10 s)")
    p.add_argument("--hubspot-latency", type=float, default=0.1,
                   help="seconds HubSpot takes to answer each call in the backlog phase")
    p.add_argument("--phases", default="ingest,burst,erasure,backlog,faults",
                   help="any of ingest, burst, erasure, backlog (HubSpot's rate budget), "
                        "faults (the fault suite's recovery times)")
    p.add_argument("--timeout", type=float, default=180.0, help="deadline per phase, seconds")
    p.add_argument("--postgres-server", default=os.environ.get(
        "PRIVASYNC_BENCH_POSTGRES", DEFAULT_POSTGRES), help="server URL, no database name")
    p.add_argument("--redis-url", default=os.environ.get("PRIVASYNC_BENCH_REDIS", DEFAULT_REDIS))
    p.add_argument("--rabbitmq-url", default=os.environ.get("PRIVASYNC_BENCH_RABBITMQ",
                                                            backends.DEFAULT_RABBITMQ))
    p.add_argument("--json", type=Path, default=backends.VAR / "latest.json")
    args = p.parse_args(argv)
    if min(args.people, args.events, args.clients, args.erasures, args.backlog) < 1:
        p.error("--people, --events, --clients, --erasures and --backlog must be at least 1")
    return args


def _say(text: str) -> None:
    print(text, flush=True)  # noqa: T201 - the benchmark reports to a person


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    services = backends.Services(args.postgres_server, args.redis_url, args.rabbitmq_url)
    services.check_loopback()
    backends.quiet_logging()
    names = [n.strip() for n in args.backends.split(",") if n.strip()]
    naive = {n.strip() for n in args.naive.split(",") if n.strip()}
    phases = {p.strip() for p in args.phases.split(",")}
    erasing = {n.strip() for n in args.erasure_backends.split(",") if n.strip()}
    config = {k: getattr(args, k) for k in ("people", "events", "clients", "poll_seconds",
                                            "worker_threads", "mailchimp_latency", "cold",
                                            "echo", "erasures", "backlog",
                                            "hubspot_latency")} | {
        "backends": names, "naive": sorted(naive), "erasure_backends": sorted(erasing)}
    command = "python -m bench.run " + shlex.join(argv if argv is not None else sys.argv[1:])
    machine = report.machine()
    _say(f"privasync bench: {command.strip()}")
    _say(f"machine: {machine['nproc']} cores ({machine['cpu_model']}), "
         f"{machine['memory_total']} RAM, Python {machine['python']}, "
         f"load {machine['load_average_at_start']}; tree {machine['git']}")
    started = time.monotonic()
    results: dict[str, dict[str, Any]] = {name: {} for name in names}

    def stamp() -> str:
        return f"[{time.monotonic() - started:6.1f}s]"

    for name in names:
        label = backends.LABELS.get(name, name)
        if "ingest" in phases:
            _say(f"{stamp()} {label}: ingest floor, {args.events} events")
            results[name]["floor"] = ingest.floor(name, services, events=args.events,
                                                  clients=args.clients, timeout=args.timeout)
            _say(f"{stamp()} {label}: ingest, {args.events} events")
            results[name]["ingest"] = ingest.run(
                name, services, events=args.events, clients=args.clients,
                poll_seconds=args.poll_seconds, timeout=args.timeout)
        if "burst" in phases:
            for variant, extra in [("burst", None)] + ([("naive", burst.NAIVE)]
                                                       if name in naive else []):
                _say(f"{stamp()} {label}: {variant}, {args.people} people")
                results[name][variant] = burst.run(
                    name, services, people=args.people, poll_seconds=args.poll_seconds,
                    worker_threads=args.worker_threads, cold=args.cold, echo=args.echo,
                    timeout=args.timeout, mailchimp_latency=args.mailchimp_latency,
                    extra=extra)
        if "erasure" in phases and name in erasing:
            _say(f"{stamp()} {label}: erasure, {args.erasures} requests")
            results[name]["erasure"] = erasure.run(
                name, services, people=args.erasures, poll_seconds=args.poll_seconds,
                worker_threads=args.worker_threads, timeout=max(args.timeout, 600.0))
    if "backlog" in phases:
        _say(f"{stamp()} {backends.LABELS['redis']}: backlog, {args.backlog} changes to HubSpot")
        results.setdefault("redis", {})["backlog"] = backlog.run(
            services, changes=args.backlog, poll_seconds=args.poll_seconds,
            worker_threads=args.worker_threads, latency=args.hubspot_latency,
            timeout=max(args.timeout, 600.0))
    fault_cases: dict[str, Any] | None = None
    if "faults" in phases:
        _say(f"{stamp()} fault suite (tests/faults)")
        fault_cases = faults.run()
    runtime = time.monotonic() - started
    machine["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    _say(report.table(results, config))
    if fault_cases is not None:
        _say("\n".join(faults.table(fault_cases)))
    _say(f"\nbench runtime {runtime:.0f} s; JSON in {args.json}")
    document = {"command": command.strip(), "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": machine, "config": config, "runtime_seconds": round(runtime, 1),
                "results": results, "faults": fault_cases}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(document, indent=2, default=str) + "\n")
    ok = all(r.get(v, {}).get("verified", {}).get("all_ok", True)
             for r in results.values() for v in ("burst", "naive"))
    ok = ok and all(not any(r["erasure"]["still_held"].values())
                    for r in results.values() if "erasure" in r)
    ok = ok and all(r["backlog"]["hubspot_429"] == 0 and _finished(r["backlog"])
                    for r in results.values() if "backlog" in r)
    ok = ok and (fault_cases is None or fault_cases["passed"])
    return 0 if ok else 1


def _finished(result: dict[str, Any]) -> bool:
    return set(result["jobs"]) <= {"done"} and sum(result["jobs"].values()) >= result["changes"]


if __name__ == "__main__":
    sys.exit(main())
