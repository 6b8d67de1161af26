"""privasync as a deployment runs it: each part its own process, started by its CLI.

``sqlite``: one ``privasync serve`` on a new SQLite file with the embedded broker (the
single-machine default: it supervises its API and a second process running the applier,
scheduler and worker). ``sqlite1``: the same in one process (``--single-process``).
``sqlite2``: the two started by hand, ``privasync serve --api-only`` and ``privasync
scheduler``. ``redis``: ``privasync
serve``, ``privasync scheduler`` (dispatch ticks, the Salesforce poller and the
applier) and two ``privasync worker`` processes on PostgreSQL and Redis;
``rabbitmq``: the same on PostgreSQL and RabbitMQ. The
vendor emulators stay in the bench's own process; every socket is on loopback.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench import backends
from privasync.demo.stack import WEBHOOK_TOKEN, Emulators

SECRET_KEY = "bench-secret-key-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def environment(emu: Emulators, database: str, broker: str, var_dir: Path, *,
                poll_seconds: float, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every setting a deployment would set, pointed at the emulators."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRIVASYNC_")}
    env |= {
        "PRIVASYNC_DATABASE_URL": database, "PRIVASYNC_BROKER_URL": broker,
        "PRIVASYNC_BROKER_NAMESPACE": backends.NAMESPACE,
        "PRIVASYNC_MAPPINGS_DIR": str(backends.MAPPINGS), "PRIVASYNC_VAR_DIR": str(var_dir),
        "PRIVASYNC_SECRET_KEY": SECRET_KEY, "PRIVASYNC_LOG_LEVEL": "WARNING",
        "PRIVASYNC_HUBSPOT__BASE_URL": emu.hubspot.url,
        "PRIVASYNC_HUBSPOT__ACCESS_TOKEN": emu.hubspot.access_token,
        "PRIVASYNC_HUBSPOT__CLIENT_SECRET": emu.hubspot.client_secret,
        "PRIVASYNC_SALESFORCE__INSTANCE_URL": emu.salesforce.url,
        "PRIVASYNC_SALESFORCE__SESSION_ID": emu.salesforce.session_id,
        "PRIVASYNC_SALESFORCE__POLL_INTERVAL_SECONDS": str(poll_seconds),
        "PRIVASYNC_MAILCHIMP__BASE_URL": f"{emu.mailchimp.url}/3.0",
        "PRIVASYNC_MAILCHIMP__API_KEY": emu.mailchimp.api_key,
        "PRIVASYNC_MAILCHIMP__LIST_ID": emu.mailchimp.list_id,
        "PRIVASYNC_MAILCHIMP__WEBHOOK_TOKEN": WEBHOOK_TOKEN,
        "PRIVASYNC_PARTNER_CONTACT_CENTRE_SECRET": emu.partner.secret,
        "PRIVASYNC_PARTNER_CONTACT_CENTRE_URL": emu.partner.url + emu.partner.path,
    }
    return env | dict(extra or {})


@dataclass
class Deployment:
    backend: str
    url: str
    database_url: str
    env: dict[str, str]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: Path = Path()
    # Each process's /metrics that can be read: the API's, and each worker's when asked.
    metrics: dict[str, str] = field(default_factory=dict)

    def peak_memory_mb(self) -> dict[str, float]:
        """Each process's peak resident memory (VmHWM), read while it still runs; the
        processes a supervising ``serve`` started are ``api/<pid>`` and so on."""
        return self._memory_mb("VmHWM")

    def rss_mb(self) -> dict[str, float]:
        """Each process's resident memory now (VmRSS), named as in ``peak_memory_mb``."""
        return self._memory_mb("VmRSS")

    def _memory_mb(self, field: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, proc in self.procs.items():
            for pid, label in [(proc.pid, name), *((c, f"{name}/{c}")
                                                   for c in _children(proc.pid))]:
                mb = memory_mb(pid, field)
                if mb is not None:
                    out[label] = mb
        return out

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs.values())


def memory_mb(pid: int, field: str = "VmRSS") -> float | None:
    """A ``/proc/<pid>/status`` memory figure (VmRSS, VmHWM) in MB; None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return next((round(int(line.split()[1]) / 1024, 1) for line in status.splitlines()
                 if line.startswith(f"{field}:")), None)


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for task in Path(f"/proc/{pid}/task").iterdir()
                for c in (task / "children").read_text().split()]
    except OSError:
        return []


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    cli = [sys.executable, "-m", "privasync", *args]
    return subprocess.Popen(cli, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            cwd=backends.ROOT)


def _ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/readyz", timeout=2).status_code == 200
    except (requests.ConnectionError, requests.Timeout):  # (a supervisor's socket takes
        return False                                        # connections before its API)


@contextmanager
def running(backend: str, services: backends.Services, emu: Emulators, *,
            poll_seconds: float, extra: Mapping[str, str] | None = None,
            workers: int = 2, worker_threads: int = 4,
            worker_metrics: bool = False) -> Iterator[Deployment]:
    """Fresh storage, the processes started and ready; stopped with SIGTERM at the end.
    ``worker_metrics``: each worker serves its /metrics on a loopback port of its own."""
    database, broker, var_dir = backends.prepare(backend, services)
    env = environment(emu, database, broker, var_dir, poll_seconds=poll_seconds, extra=extra)
    env["PRIVASYNC_WORKER__THREADS"] = str(worker_threads)
    port = free_port()
    deployment = Deployment(backend, f"http://127.0.0.1:{port}", database, env, logs=var_dir)
    deployment.metrics["api"] = f"{deployment.url}/metrics"
    api = ["serve", "--port", str(port)] + {"sqlite1": ["--single-process"],
                                            "sqlite2": ["--api-only"]}.get(backend, [])
    deployment.procs["api"] = _start(api, env, var_dir / "api.log")
    if backend == "sqlite2":
        deployment.procs["scheduler"] = _start(["scheduler"], env, var_dir / "scheduler.log")
    if broker:
        deployment.procs["scheduler"] = _start(["scheduler"], env, var_dir / "scheduler.log")
        for i in range(workers):
            name, command = f"worker{i + 1}", ["worker"]
            if worker_metrics:
                at = free_port()
                command += ["--metrics-port", str(at), "--metrics-host", "127.0.0.1"]
                deployment.metrics[name] = f"http://127.0.0.1:{at}/metrics"
            deployment.procs[name] = _start(command, env, var_dir / f"{name}.log")
    try:
        deadline = time.monotonic() + 60
        while not _ready(deployment.url):
            if time.monotonic() > deadline or not deployment.alive():
                raise SystemExit(f"privasync did not become ready; see {var_dir}/*.log")
            time.sleep(0.1)
        yield deployment
    finally:
        for proc in deployment.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in deployment.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
