"""privasync as a deployment runs it, with the faults a deployment meets.

API, applier, two workers and a scheduler are separate processes on PostgreSQL and a
Redis server this harness starts on a free loopback port (never the machine's shared
one, so it may be killed and flushed). Every process reaches PostgreSQL through a TCP
proxy the test controls, so the database can be cut. The vendors are the emulators.

The workload is people, not log lines: a population seeded in every system, some of
whom unsubscribe (in HubSpot, or in Mailchimp); the check is every system's end state,
the jobs table, the inbox and the ledger."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis
import requests
import sqlalchemy as sa
from sqlalchemy import func

from core import inbox, ledger
from core.db import jobs, make_engine
from privasync.demo.stack import WEBHOOK_TOKEN, Emulators, hubspot_subscriptions
from tests import launch, timing
from tests.conftest import make_database
from tests.timing import scaled

MAPPINGS = Path(__file__).parents[2] / "mappings"
ROOT = Path(__file__).parents[2]

LEASE_SECONDS = 3.0      # a worker's claim: a SIGKILLed worker's batch is free after this
DISPATCH_SECONDS = 0.5   # the scheduler's tick that resends what a lost message started
APPLIER_LEASE_SECONDS = 3.0
SCHEDULER_LEASE_SECONDS = 4.0
# A failed job's next try comes 0.2 s, 0.4 s, then at most this long after it: the backoff
# still grows and a vendor's Retry-After still wins, but a case whose vendor fails eight
# times in a row no longer waits 2 s between its last tries.
MAX_BACKOFF_SECONDS = 0.5
# How long privasync waits for HubSpot, Salesforce and Mailchimp (the emulators answer in
# milliseconds; a case's slow answers take longer than this, so they time out).
VENDOR_TIMEOUT_SECONDS = 1.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(what: str, check: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``check`` holds (a service being cut or started answers "not yet");
    AssertionError naming ``what`` after ``timeout`` (scaled)."""
    return timing.wait_until(what, check, timeout, interval=0.05, tolerate=(
        sa.exc.OperationalError, requests.RequestException, redis.RedisError))


class RedisServer:
    """A redis-server of the test's own, without persistence (as the shared one runs):
    killing it loses every queued message, which is the point."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir / f"redis-{self.port}"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        log = (self.workdir / "redis.log").open("ab")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis(port=self.port, socket_timeout=1)
        wait_until("redis-server answers", lambda: bool(client.ping()), timeout=10)
        client.close()
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=scaled(10))

    def restart_empty(self) -> None:
        self.kill()
        self.start()

    def flushall(self) -> None:
        client = redis.Redis(port=self.port, socket_timeout=2)
        client.flushall()
        client.close()


class RabbitServer:
    """A RabbitMQ node of the test's own on free ports (AMQP and Erlang distribution), with
    its own Mnesia directory: ``restart_empty`` starts it again on a fresh one, as a node
    whose disk was lost would come back."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.dist_port = free_port()
        self.workdir = workdir / f"rabbitmq-{self.port}"
        self.generation = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def start(self) -> RabbitServer:
        base = self.workdir / f"g{self.generation}"
        base.mkdir(parents=True, exist_ok=True)
        (base / "enabled_plugins").write_text("[].\n")
        env = {**os.environ, "HOME": str(base),
               "RABBITMQ_NODENAME": f"privasync-faults-{self.port}@localhost",
               "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
               "RABBITMQ_NODE_PORT": str(self.port), "RABBITMQ_DIST_PORT": str(self.dist_port),
               "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
               "RABBITMQ_LOG_BASE": str(base / "log"),
               "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
               "RABBITMQ_CONFIG_FILE": str(base / "none")}
        log = (self.workdir / "rabbitmq.out").open("ab")
        self.proc = subprocess.Popen(["/usr/lib/rabbitmq/bin/rabbitmq-server"], env=env,
                                     stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_until("RabbitMQ accepts AMQP connections", self._answers, timeout=60)
        return self

    def running(self) -> RabbitServer:
        """The node, started again if a case left it down."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        return self

    def _answers(self) -> bool:
        import pika

        try:
            pika.BlockingConnection(pika.URLParameters(self.url)).close()
            return True
        except pika.exceptions.AMQPError:
            time.sleep(0.2)
            return False

    def kill(self) -> None:
        """SIGKILL the whole node (the shell wrapper and the Erlang VM under it)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=scaled(10))

    def restart_empty(self) -> None:
        self.kill()
        self.generation += 1
        self.start()


class TcpProxy:
    """A loopback TCP relay the test can cut: ``cut()`` resets every open connection and
    refuses new ones until ``restore()``; ``reset_new`` resets new connections at once
    (a vendor's connection resets) while open ones carry on."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.mode = "pass"  # pass | reset_new | cut
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopping = False
        self.refused = 0
        threading.Thread(target=self._accept, name=f"proxy-{self.port}", daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            self.mode = "cut"
            doomed, self._open = self._open, set()
        for sock in doomed:
            _reset(sock)

    def restore(self) -> None:
        self.mode = "pass"

    def stop(self) -> None:
        self._stopping = True
        self.cut()
        self.listener.close()

    def _accept(self) -> None:
        while not self._stopping:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.mode != "pass":
                self.refused += 1
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=scaled(5))
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open |= {client, upstream}
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while True:
                readable, _, _ = select.select(list(peers), [], [], 1.0)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            with self._lock:
                self._open -= {a, b}
            for sock in (a, b):
                sock.close()


def _reset(sock: socket.socket) -> None:
    """Close with an RST, as a dropped connection or a firewall does."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()
    except OSError:
        pass


@dataclass
class Population:
    """People seeded in every system; ``leaving`` unsubscribe, ``staying`` must not."""

    via_hubspot: list[str] = field(default_factory=list)
    via_mailchimp: list[str] = field(default_factory=list)
    staying: list[str] = field(default_factory=list)
    via_salesforce: list[str] = field(default_factory=list)
    contacts: dict[str, str] = field(default_factory=dict)

    @property
    def leaving(self) -> list[str]:
        return self.via_hubspot + self.via_mailchimp + self.via_salesforce

    @property
    def everyone(self) -> list[str]:
        return self.leaving + self.staying


class Deployment:
    """The processes of a scaled-out privasync, started, killed and checked by a test."""

    def __init__(self, tmp_path: Path, *, schedulers: int = 1,
                 broker: RabbitServer | None = None,
                 settings: dict[str, str] | None = None) -> None:
        """``broker``: a RabbitMQ node the caller owns (the deployment takes queues of its
        own on it); without one, a Redis server of the deployment's own."""
        self.tmp = tmp_path
        self.emu = Emulators().start()
        self._own_broker = broker is None
        self.broker: RedisServer | RabbitServer = (
            RedisServer(tmp_path).start() if broker is None else broker.running())
        self.database = make_database("postgresql", tmp_path)
        self.db_proxy = TcpProxy(5432)
        proxied = self.database.replace("127.0.0.1:5432", f"127.0.0.1:{self.db_proxy.port}")
        self.engine = make_engine(self.database)  # the test's own view: never cut
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.vendor = {name: TcpProxy(_port(url)) for name, url in (
            ("hubspot", self.emu.hubspot.url), ("salesforce", self.emu.salesforce.url),
            ("mailchimp", self.emu.mailchimp.url), ("partner", self.emu.partner.url))}
        self.env = self._environment(proxied) | (settings or {})
        self.procs: dict[str, launch.Process] = {}
        self.schedulers = [f"scheduler{i}" for i in range(1, schedulers + 1)]
        self._verified = 0

    @property
    def redis(self) -> RedisServer:
        assert isinstance(self.broker, RedisServer), "this deployment runs on RabbitMQ"
        return self.broker

    # processes -----------------------------------------------------------------------

    COMMANDS = {"api": ["serve", "--api-only"], "applier": ["applier"],
                "worker1": ["worker", "--threads", "2"],
                "worker2": ["worker", "--threads", "2"]}

    def up(self) -> Deployment:
        for name in [*self.COMMANDS, *self.schedulers]:
            self.start(name)
        wait_until("every part ready", self._ready, timeout=60)
        self.emu.hubspot.configure_webhooks(
            f"{self.url}/webhooks/hubspot", hubspot_subscriptions(_mappings()),
            max_attempts=40, retry_delay=0.1, max_retry_delay=0.5)
        self.emu.mailchimp.configure_webhook(f"{self.url}/webhooks/mailchimp/{WEBHOOK_TOKEN}")
        return self

    def start(self, name: str) -> launch.Process:
        """``privasync <command>`` as a process of its own (forked from tests.launch's server,
        which imported privasync once)."""
        args = (self.COMMANDS.get(name) or ["scheduler", "--no-applier"]).copy()
        if name == "api":
            args += ["--port", str(self.port)]
        proc = launch.Process(args, self.env, ROOT, self.tmp / f"{name}.log")
        self.procs[name] = proc
        return proc

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        proc.kill()
        proc.wait(timeout=scaled(10))

    def pause(self, *names: str) -> None:
        for name in names:
            self.procs[name].send_signal(signal.SIGSTOP)

    def resume(self, *names: str) -> None:
        for name in names:
            self.procs[name].send_signal(signal.SIGCONT)

    def down(self) -> str:
        """Stop everything; returns every process's log (for assertions and failures)."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=scaled(30))
            except subprocess.TimeoutExpired:
                proc.kill()
        self.engine.dispose()
        self.emu.stop()
        if self._own_broker:
            self.broker.kill()
        for proxy in [self.db_proxy, *self.vendor.values()]:
            proxy.stop()
        return "".join(f"--- {path.name}\n{path.read_text(errors='replace')}"
                       for path in sorted(self.tmp.glob("*.log")))

    def _ready(self) -> bool:
        try:
            return requests.get(f"{self.url}/readyz", timeout=scaled(2)).status_code == 200
        except requests.ConnectionError:
            return False

    def _environment(self, database: str) -> dict[str, str]:
        """Vendors are reached through the proxies in ``self.vendor`` (for resets)."""
        emu = self.emu

        def via(name: str, url: str) -> str:
            return url.replace(f":{_port(url)}", f":{self.vendor[name].port}", 1)
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith("PRIVASYNC_")},
            "PRIVASYNC_DATABASE_URL": database, "PRIVASYNC_BROKER_URL": self.broker.url,
            # Its own queues on a node other cases use too (the API's port is unique).
            "PRIVASYNC_BROKER_NAMESPACE": f"privasync-faults-{self.port}",
            "PRIVASYNC_MAPPINGS_DIR": str(MAPPINGS), "PRIVASYNC_VAR_DIR": str(self.tmp),
            "PRIVASYNC_SECRET_KEY": "fault-suite-secret-0123456789abcdef",
            "PRIVASYNC_HUBSPOT__BASE_URL": via("hubspot", emu.hubspot.url),
            "PRIVASYNC_HUBSPOT__ACCESS_TOKEN": emu.hubspot.access_token,
            "PRIVASYNC_HUBSPOT__CLIENT_SECRET": emu.hubspot.client_secret,
            "PRIVASYNC_HUBSPOT__TIMEOUT_SECONDS": str(VENDOR_TIMEOUT_SECONDS),
            "PRIVASYNC_SALESFORCE__INSTANCE_URL": via("salesforce", emu.salesforce.url),
            "PRIVASYNC_SALESFORCE__SESSION_ID": emu.salesforce.session_id,
            "PRIVASYNC_SALESFORCE__POLL_INTERVAL_SECONDS": "0.5",
            "PRIVASYNC_SALESFORCE__TIMEOUT_SECONDS": str(VENDOR_TIMEOUT_SECONDS),
            "PRIVASYNC_MAILCHIMP__BASE_URL": via("mailchimp", f"{emu.mailchimp.url}/3.0"),
            "PRIVASYNC_MAILCHIMP__API_KEY": emu.mailchimp.api_key,
            "PRIVASYNC_MAILCHIMP__LIST_ID": emu.mailchimp.list_id,
            "PRIVASYNC_MAILCHIMP__WEBHOOK_TOKEN": WEBHOOK_TOKEN,
            "PRIVASYNC_MAILCHIMP__TIMEOUT_SECONDS": str(VENDOR_TIMEOUT_SECONDS),
            "PRIVASYNC_PARTNER_CONTACT_CENTRE_SECRET": emu.partner.secret,
            "PRIVASYNC_PARTNER_CONTACT_CENTRE_URL": via("partner",
                                                        emu.partner.url + emu.partner.path),
            "PRIVASYNC_WORKER__HEARTBEAT_SECONDS": "1",
            "PRIVASYNC_WORKER__LEASE_SECONDS": str(LEASE_SECONDS),
            "PRIVASYNC_WORKER__DISPATCH_SECONDS": str(DISPATCH_SECONDS),
            "PRIVASYNC_WORKER__MIN_BACKOFF_SECONDS": "0.2",
            "PRIVASYNC_WORKER__MAX_BACKOFF_SECONDS": str(MAX_BACKOFF_SECONDS),
            "PRIVASYNC_WORKER__MAX_ATTEMPTS": "40",
            "PRIVASYNC_APPLIER__LEASE_SECONDS": str(APPLIER_LEASE_SECONDS),
            "PRIVASYNC_SCHEDULER__LEASE_SECONDS": str(SCHEDULER_LEASE_SECONDS),
        }

    # the workload --------------------------------------------------------------------

    def seed(self, leaving_hubspot: int, leaving_mailchimp: int, staying: int,
             leaving_salesforce: int = 0, *, settle: bool = True) -> Population:
        """People known to every system and subscribed; with ``settle``, waits until
        privasync knows them and has nothing left to do."""
        def named(kind: str, n: int) -> list[str]:
            return [f"{kind}-{i}@faults.example.org" for i in range(n)]
        people = Population(via_hubspot=named("hs", leaving_hubspot),
                            via_mailchimp=named("mc", leaving_mailchimp),
                            staying=named("stay", staying),
                            via_salesforce=named("sf", leaving_salesforce))
        emu = self.emu
        for email in people.everyone:
            contact = emu.hubspot.create_contact(email)
            emu.hubspot.ui_set_subscription(contact, 101, True)
            emu.hubspot.ui_set_subscription(contact, 102, True)
            emu.salesforce.create_contact(email, last_name="Customer")
            emu.mailchimp.add_member(email, status="subscribed")
            people.contacts[email] = contact
        if settle:
            emu.hubspot.flush_webhooks(timeout=scaled(60))
            wait_until("privasync knows everyone and is quiet",
                       lambda: self.known(people.everyone) and self.quiet(), timeout=60)
        return people

    def unsubscribe(self, people: Population) -> None:
        for email in people.via_hubspot:
            self.emu.hubspot.ui_unsubscribe_all(people.contacts[email])
        for email in people.via_mailchimp:
            self.emu.mailchimp.user_unsubscribe(email)
        for email in people.via_salesforce:
            for record in self.emu.salesforce.find_by_email(email):
                self.emu.salesforce.ui_set_opt_out(record, True)

    # the checks ----------------------------------------------------------------------

    def known(self, emails: list[str]) -> bool:
        return all(self.subject_of(email) is not None for email in emails)

    def open_jobs(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(jobs.c.status, func.count()).where(
                jobs.c.status.in_(["pending", "running", "dead"])).group_by(jobs.c.status))
            return {status: int(n) for status, n in rows}

    def quiet(self) -> bool:
        """Nothing waiting in the inbox, no job pending or running, and no receipt waiting
        for the applier to chain it into the ledger (a batch's receipt is written with its
        outcome, and chained at the applier's next tick). Read in that order: whatever the
        one before leads to is seen by the one after."""
        with self.engine.connect() as conn:
            waiting = inbox.backlog(conn).rows
        if waiting or {k: v for k, v in self.open_jobs().items() if k != "dead"}:
            return False
        with self.engine.connect() as conn:
            return ledger.pending_count(conn) == 0

    def unsubscribed_everywhere(self, email: str) -> bool:
        emu = self.emu
        sf = emu.salesforce.find_by_email(email)
        return (emu.hubspot.subscription_status(email, 102) == "NOT_SUBSCRIBED"
                and (emu.mailchimp.member(email) or {}).get("status") == "unsubscribed"
                and bool(sf) and all((emu.salesforce.record(i) or {}).get("HasOptedOutOfEmail")
                                     is True for i in sf)
                and self._partner_withdrawn(email))

    def subscribed_everywhere(self, email: str) -> bool:
        emu = self.emu
        sf = emu.salesforce.find_by_email(email)
        return (emu.hubspot.subscription_status(email, 102) == "SUBSCRIBED"
                and (emu.mailchimp.member(email) or {}).get("status") == "subscribed"
                and all((emu.salesforce.record(i) or {}).get("HasOptedOutOfEmail") is not True
                        for i in sf))

    def _partner_withdrawn(self, email: str) -> bool:
        subject = self.subject_of(email)
        held = self.emu.partner.state(subject) if subject else None
        consents = held["consents"].values() if held else []
        return bool(consents) and all(c["status"] == "withdrawn" for c in consents)

    def subject_of(self, email: str) -> str | None:
        """The person's subject id, through privasync's identity map (keyed digests)."""
        from core.crypto import Keyring
        from core.identity import IdentityMap

        identity = IdentityMap(Keyring(self.env["PRIVASYNC_SECRET_KEY"].encode()))
        with self.engine.connect() as conn:
            return identity.by_email(conn, email)

    def diagnose(self, people: Population) -> str:
        """What is not there yet: systems per person, and the unfinished jobs."""
        emu = self.emu
        lagging = []
        for email in people.leaving:
            sf = emu.salesforce.find_by_email(email)
            state = {
                "hubspot": emu.hubspot.subscription_status(email, 102) == "NOT_SUBSCRIBED",
                "mailchimp": (emu.mailchimp.member(email) or {}).get("status") == "unsubscribed",
                "salesforce": bool(sf) and all((emu.salesforce.record(i) or {}).get(
                    "HasOptedOutOfEmail") is True for i in sf),
                "partner": self._partner_withdrawn(email)}
            missing = [system for system, there in state.items() if not there]
            if missing:
                lagging.append(f"{email.split('@')[0]}: not yet {missing}")
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT destination, kind, status, attempts, last_error_class, claimed_by "
                "FROM jobs WHERE status <> 'done' ORDER BY id LIMIT 20")).all()
            backlog = inbox.backlog(conn)
        return (f"lagging: {lagging[:10]} ({len(lagging)})\nunfinished jobs: "
                f"{[tuple(r) for r in rows]}\ninbox: {backlog}")

    def converged(self, people: Population) -> bool:
        return (all(self.unsubscribed_everywhere(e) for e in people.leaving)
                and self.quiet())

    def verify_ledger(self) -> tuple[int, str]:
        """``privasync audit verify`` on the database itself (not through the proxy)."""
        self._verified += 1
        return launch.run(["audit", "verify"],
                          self.env | {"PRIVASYNC_DATABASE_URL": self.database}, ROOT,
                          self.tmp / f"audit-verify-{self._verified}.out", timeout=scaled(60))


def _port(url: str) -> int:
    from urllib.parse import urlsplit

    port = urlsplit(url).port
    assert port is not None, url
    return port


def _mappings():  # type: ignore[no-untyped-def]
    from core.mappings import load_mappings
    from privasync.app.taxonomy import data_categories

    return load_mappings(MAPPINGS, data_categories())


def record_recovery(case: str, seconds: float, detail: str = "") -> None:
    """Print a case's recovery time; with PRIVASYNC_TEST_FAULTS_REPORT set (make bench), also
    append it there as a JSON line."""
    print(f"\n[fault] {case}: recovered in {seconds:.2f} s {detail}".rstrip())  # noqa: T201
    target = os.environ.get("PRIVASYNC_TEST_FAULTS_REPORT")
    if target:
        with open(target, "a", encoding="utf-8") as out:
            out.write(json.dumps({"case": case, "recovery_seconds": round(seconds, 3),
                                  "detail": detail}) + "\n")


def deployment(tmp_path: Path, **kwargs: object) -> Iterator[Deployment]:
    running = Deployment(tmp_path, **kwargs).up()  # type: ignore[arg-type]
    try:
        yield running
    finally:
        (tmp_path / "all.log").write_text(running.down())


def assert_end_state(dep: Deployment, people: Population, case: str, since: float,
                     timeout: float = LEASE_SECONDS + DISPATCH_SECONDS + 40, *,
                     record: bool = True) -> float:
    """Every leaver unsubscribed in every system, nobody else touched, nothing left
    pending or running, no job dead, the ledger intact; records the recovery time from
    ``since`` (time.monotonic() when the fault stopped)."""
    try:
        wait_until(f"{case}: every unsubscribe everywhere and nothing left to do",
                   lambda: dep.converged(people), timeout=timeout)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{dep.diagnose(people)}") from None
    recovered = time.monotonic() - since
    for email in people.staying:
        assert dep.subscribed_everywhere(email), f"{case}: a bystander was changed"
    assert dep.open_jobs() == {}, f"{case}: jobs left {dep.open_jobs()}"
    code, report = dep.verify_ledger()
    assert code == 0, f"{case}: ledger: {report}"
    if record:
        record_recovery(case, recovered, f"({len(people.leaving)} unsubscribes, "
                        f"{len(people.staying)} bystanders)")
    return recovered
