"""``privasync``: serve, worker, scheduler, demo and admin commands.

Exit codes: 0 success, 1 a check failed (ledger broken, mappings invalid),
2 bad usage or configuration (the message says what to fix).
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click
import structlog

from privasync.cli.errors import TRACEBACK, GuardedGroup, OperatorError


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record comes (a test runner or a
    daemoniser may replace it after logging was configured)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stderr for our logs and the libraries' alike, every line (exception
    texts included) passed through the redaction processor last (privasync/app/redaction.py)."""
    from privasync.app.redaction import redact

    stamp: list[structlog.typing.Processor] = [
        structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso", utc=True)]
    handler = _StderrHandler()
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, redact,
                    structlog.processors.JSONRenderer()],
        foreign_pre_chain=[structlog.stdlib.add_logger_name, structlog.stdlib.ExtraAdder(),
                           *stamp]))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # The vendor clients log request and response bodies (addresses, names) at DEBUG:
    # never let them, whatever our own level.
    for noisy in ("hubspot", "urllib3", "simple_salesforce", "requests", "aiosmtpd",
                  "mail.log", "smtplib"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, root.level))
    # pika tells of every RabbitMQ connection opened and closed (each readiness probe), and
    # logs an ERROR with a traceback whenever RabbitMQ drops an idle sender's connection
    # (missed heartbeats), which the next send reopens. What matters is reported by
    # Dramatiq (a consumer's lost connection) and by us (privasync_enqueue_failures_total).
    logging.getLogger("pika").setLevel(logging.DEBUG if root.level <= logging.DEBUG
                                       else logging.CRITICAL)
    structlog.configure(
        processors=[*stamp, structlog.processors.format_exc_info, redact,
                    structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)),
        logger_factory=lambda *_: structlog.PrintLogger(sys.stderr))


def _settings() -> Any:
    """The settings loaded at start (the root command keeps them in the context)."""
    from privasync.app.settings import Settings

    ctx = click.get_current_context(silent=True)
    found = ctx.find_root().obj if ctx is not None else None
    return found if isinstance(found, Settings) else Settings()


def _build(**kwargs: Any) -> Any:
    from privasync.app.bootstrap import build

    return build(_settings(), **kwargs)


class _Fail(click.ClickException):
    exit_code = 1


def _start(ctx: click.Context, log_level: str | None) -> None:
    """Settings first: a bad value or an unknown ``PRIVASYNC_`` name stops every command."""
    from privasync.app.environment import unknown_variables
    from privasync.app.settings import Settings

    settings = Settings()
    unknown = unknown_variables(Path(settings.mappings_dir))
    if unknown:
        raise OperatorError("unknown setting " + "; ".join(unknown)
                            + ": privasync config show lists every setting")
    ctx.obj = settings
    quiet = ctx.invoked_subcommand == "demo"
    configure_logging(log_level or ("WARNING" if quiet else settings.log_level))


@click.group(cls=GuardedGroup)
@click.version_option(package_name="privasync", message="privasync %(version)s")
@click.option("--log-level", default=None,
              help="DEBUG, INFO, WARNING (default: PRIVASYNC_LOG_LEVEL; the demo: WARNING).")
@click.option("--traceback", "traceback", is_flag=True,
              help="Let an unexpected error show its traceback (for a bug report).")
@click.pass_context
def main(ctx: click.Context, log_level: str | None, traceback: bool) -> None:
    """privasync: consent and erasure sync between CRMs, mailing tools and partners.

    Exit codes: 0 success, 1 a check failed, 2 bad usage, settings or database (one line
    says what to fix)."""
    ctx.meta[TRACEBACK] = traceback
    _start(ctx, log_level)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--api-only", is_flag=True,
              help="With no broker URL: leave the applier, scheduler and worker to a "
                   "`privasync scheduler` process on the same database.")
def serve(host: str, port: int, api_only: bool) -> None:
    """The HTTP app. With no broker URL it also runs the worker, the applier and the
    scheduler in-process, unless --api-only."""
    import uvicorn

    from privasync.web.app import create_app

    container = _build()
    in_process = container.embedded and not api_only
    if in_process:
        container.start_worker()
        container.start_scheduler()  # and the applier
    # No access log: Mailchimp's webhook path carries its secret token.
    # log_config=None: uvicorn's own lines go through our handler (and its redaction).
    server = _GracefulServer(uvicorn.Config(create_app(container), host=host, port=port,
                                            access_log=False, log_level="warning",
                                            log_config=None),
                             started=lambda: _log_start(
                                 container, "api, applier, scheduler and worker" if in_process
                                 else "api", address=f"http://{host}:{port}"))
    try:
        server.run()
    finally:
        container.close()


def _log_start(container: Any, runs: str, address: str | None = None) -> None:
    """One line once running (serve: once the socket listens): where, on what, talking to
    whom; no secrets."""
    from urllib.parse import urlsplit

    scheme = urlsplit(container.settings.broker_url).scheme
    broker = {"": "embedded", "redis": "redis", "rediss": "redis", "amqp": "rabbitmq",
              "amqps": "rabbitmq"}.get(scheme, scheme)
    systems = set(container.connections)
    where = {"address": address} if address else {}
    structlog.get_logger("privasync").info(
        "privasync listening" if address else "privasync running", **where, runs=runs,
        database=container.engine.dialect.name, broker=broker, systems=sorted(systems))


class _GracefulServer:
    """uvicorn that stops on SIGTERM/SIGINT and returns (uvicorn itself re-raises the
    signal after shutdown, which would skip closing the worker and database)."""

    def __init__(self, config: Any, started: Any = None) -> None:
        import contextlib

        import uvicorn

        class Server(uvicorn.Server):
            async def startup(self, sockets: Any = None) -> None:
                await super().startup(sockets)
                if self.started and started is not None:
                    started()

            @contextlib.contextmanager
            def capture_signals(self) -> Any:
                previous = {s: signal.signal(s, lambda *_: setattr(self, "should_exit", True))
                            for s in (signal.SIGINT, signal.SIGTERM)}
                try:
                    yield
                finally:
                    for s, handler in previous.items():
                        signal.signal(s, handler)

        self._server = Server(config)

    def run(self) -> None:
        self._server.run()


def _wait_for_signal(container: Any, runs: str) -> None:
    """Say it runs (once SIGTERM stops it cleanly), then block until SIGINT or SIGTERM.
    The main thread wakes every second: Python runs a signal's handler only in the main
    thread, and a signal the kernel hands to another thread (it does when the main one
    cannot take it, e.g. just after SIGCONT) would otherwise never interrupt a wait
    without a timeout."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    _log_start(container, runs)
    while not stop.wait(1.0):
        pass


@main.command()
@click.option("--threads", type=int, default=None, help="Worker threads (default: settings).")
@click.option("--metrics-port", type=int, default=None, help="Serve /metrics on this port.")
def worker(threads: int | None, metrics_port: int | None) -> None:
    """Dramatiq workers delivering jobs (needs PRIVASYNC_BROKER_URL)."""
    if not _settings().broker_url:
        raise OperatorError("privasync worker needs PRIVASYNC_BROKER_URL (redis:// or amqp://); "
                            "on one machine privasync serve runs the worker")
    container = _build()
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, registry=container.metrics.registry)
    try:
        container.start_worker(threads)
    except BaseException:
        container.close()  # the root group's handler says what went wrong, in one line
        raise
    try:
        _wait_for_signal(container, "worker")
    finally:
        container.close()


@main.command()
@click.option("--no-applier", is_flag=True, help="Leave applying the inbox to `privasync "
              "applier` processes.")
def scheduler(no_applier: bool) -> None:
    """Dispatch ticks, the Salesforce poller and the applier (one leader each, by lease).
    With no broker URL the embedded broker lives in this process, so the worker does too."""
    container = _build()
    if container.embedded:
        container.start_worker()
    container.start_scheduler(with_applier=not no_applier)
    try:
        _wait_for_signal(container, ("scheduler" if no_applier else "scheduler and applier")
                         + (" and worker" if container.embedded else ""))
    finally:
        container.close()


@main.command()
def applier() -> None:
    """Only the applier: applies stored deliveries (one active at a time, by lease)."""
    container = _build()
    container.start_applier()
    try:
        _wait_for_signal(container, "applier")
    finally:
        container.close()


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations (wrapping keys stored unwrapped with the KEK)."""
    from privasync.app.bootstrap import open_database
    from privasync.app.environment import mask_url

    settings = _settings()
    engine, _ = open_database(settings, migrate=True)
    engine.dispose()
    click.echo(f"database schema is up to date at {mask_url(settings.database_url)}")


@main.group()
def audit() -> None:
    """Proof: the ledger."""


@audit.command("verify")
def audit_verify() -> None:
    """Recompute the ledger's hash chain; exit 1 if any entry was altered."""
    from core import ledger
    from core.db import reader
    from privasync.app.database import open_current

    engine = reader(open_current(_settings().database_url))
    with engine.connect() as conn:
        report = ledger.verify(conn)
        waiting = ledger.pending_count(conn)
    if not report.ok:
        raise _Fail(str(report))
    click.echo(str(report) + (f"; {waiting} newer entries wait to be chained" if waiting
                              else ""))


@main.group()
def mappings() -> None:
    """The admin's purpose and consent mappings."""


@mappings.command("validate")
@click.option("--dir", "directory", type=click.Path(path_type=Path), default=None,
              help="Mappings directory (default: PRIVASYNC_MAPPINGS_DIR).")
def mappings_validate(directory: Path | None) -> None:
    """Check every mapping file; each error names the file and line. Exit 1 on errors;
    warnings (an empty file, a system or partner not configured here) leave it 0."""
    from privasync.app.environment import LayeredEnviron
    from privasync.app.mapping_warnings import warnings

    path = Path(directory or _settings().mappings_dir)
    loaded = _load(path)
    for warning in warnings(path, loaded, _settings(), LayeredEnviron()):
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"{path}: {len(loaded.purposes)} purposes, {len(loaded.systems)} systems, "
               f"{len(loaded.partners)} partners: valid")


def _load(directory: Path | None) -> Any:
    from core.mappings import MappingError, load_mappings
    from privasync.app.taxonomy import data_categories

    path = Path(directory or _settings().mappings_dir)
    if not path.is_dir():
        raise OperatorError(f"mappings directory {path} does not exist: set "
                            "PRIVASYNC_MAPPINGS_DIR (or --dir) to the directory holding "
                            "purposes.yaml")
    try:
        return load_mappings(path, data_categories())
    except MappingError as exc:
        for issue in exc.issues:
            click.echo(f"{path.name}/{issue}", err=True)
        raise _Fail(f"{len(exc.issues)} error(s) in {path}") from None


@mappings.command("show")
@click.option("--dir", "directory", type=click.Path(path_type=Path), default=None)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def mappings_show(directory: Path | None, fmt: str) -> None:
    """The data map: every field x destination, and on what condition it may flow."""
    from core.datamap import as_rows, destinations, flows

    loaded = _load(directory)
    rows = flows(loaded)
    if fmt == "json":
        click.echo(json.dumps(as_rows(loaded), indent=2))
        return
    names = destinations(loaded)
    by_field: dict[str, dict[str, str]] = {}
    for f in rows:
        by_field.setdefault(f.field, {})[f.destination] = f.summary
    click.echo(f"Data map: {len(by_field)} fields, destinations: {', '.join(names)}")
    for field, cells in by_field.items():
        flag = " (Art. 9)" if loaded.fields[field].special else ""
        click.echo(f"{field}{flag}")
        for destination in names:
            if cells[destination] != "-":
                click.echo(f"  -> {destination:<24} {cells[destination]}")


@mappings.command("explain")
@click.argument("field")
@click.option("--to", "destination", required=True, help="A system or partner:NAME.")
@click.option("--subject", "subject_id", default=None, help="Decide for this stored subject.")
@click.option("--dir", "directory", type=click.Path(path_type=Path), default=None)
def mappings_explain(field: str, destination: str, subject_id: str | None,
                     directory: Path | None) -> None:
    """Whether and why SYSTEM.FIELD flows to DESTINATION (exit 1 if it does not)."""
    from datetime import UTC, datetime

    from core.datamap import destinations, flows
    from core.minimise import explain

    loaded = _load(directory)
    system, _, vendor = field.partition(".")
    mapping = loaded.systems.get(system)
    if mapping is None or vendor not in mapping.fields:
        raise click.UsageError(f"{field!r} is not a mapped field; use SYSTEM.FIELD, e.g. "
                               "hubspot.date_of_birth")
    if destination not in destinations(loaded):
        raise click.UsageError(f"unknown destination {destination!r}; known: "
                               + ", ".join(destinations(loaded)))
    fm = mapping.fields[vendor]
    special = ", special category" if fm.special else ""
    click.echo(f"{field} is {fm.canonical} ({fm.category}{special}), "
               f"collected for: {', '.join(fm.purposes)}")
    click.echo(f"{destination} uses data for: "
               f"{', '.join(sorted(loaded.destination_purposes(destination))) or 'nothing'}")
    flow = next(f for f in flows(loaded)
                if f.field == fm.canonical and f.destination == destination)
    if not flow.conditions:
        raise _Fail("does not flow: no purpose in common")
    for purpose, condition in flow.conditions.items():
        click.echo(f"  for {purpose}: flows when {condition}")
    if subject_id is None:
        return
    from core import state
    from privasync.app.database import open_current

    with open_current(_settings().database_url).connect() as conn:
        context = state.context(conn, subject_id)
    reasons = explain(fm.canonical, None, context, loaded.destination_purposes(destination),
                      loaded, datetime.now(UTC))
    for purpose, reason in reasons.items():
        click.echo(f"  subject {subject_id}, {purpose}: "
                   f"{'flows' if reason is None else 'blocked: ' + reason.value}")
    if all(r is not None for r in reasons.values()):
        raise _Fail("does not flow for this subject")


@mappings.command("diff")
@click.argument("old", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.argument("new", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--no-subjects", is_flag=True, help="Skip counting stored people.")
@click.pass_context
def mappings_diff(ctx: click.Context, old: Path, new: Path, no_subjects: bool) -> None:
    """What NEW would start or stop sending compared with OLD, with people affected.
    Exit 0 when nothing would change, 1 when something would (CI can gate on it)."""
    from datetime import UTC, datetime

    from core import datamap, state
    from privasync.app.database import open_current

    before, after = _load(old), _load(new)
    contexts: list[Any] = []
    if not no_subjects:
        with open_current(_settings().database_url).connect() as conn:
            contexts = [state.context(conn, s) for s in list(state.live_subjects(conn))]
    changes = datamap.diff(before, after, contexts, datetime.now(UTC))
    if not changes:
        click.echo("no change in what flows where")
        return
    for c in changes:
        people = "" if no_subjects else (f"  [{c.starts} people start, {c.stops} stop, "
                                         f"of {len(contexts)}]")
        click.echo(f"{c.field} -> {c.destination}: {c.before}  =>  {c.after}{people}")
    ctx.exit(1)


@main.group()
def tokens() -> None:
    """Admin API tokens: shown once at creation, stored only as keyed hashes."""


class _BadInput(click.ClickException):
    exit_code = 2


def _token_store() -> Any:
    """The database (migrated: a token may be the first thing made) and the keyring."""
    from privasync.app.bootstrap import open_database

    return open_database(_settings(), migrate=True)


@tokens.command("create")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True,
              help="A scope to grant (repeat for more): requests:read, tokens:write, ...")
@click.option("--expires-in-days", type=click.IntRange(1, 3650), default=None,
              help="Days until it expires (default: never).")
def tokens_create(name: str, scopes: tuple[str, ...], expires_in_days: int | None) -> None:
    """Create a token NAME and print it, this once."""
    from datetime import UTC, datetime, timedelta

    from core import tokens as store
    from core.errors import BadInput

    engine, keyring = _token_store()
    now = datetime.now(UTC)
    expires_at = now + timedelta(days=expires_in_days) if expires_in_days else None
    try:
        with engine.begin() as conn:
            token = store.create(conn, keyring, name, scopes, now, expires_at, actor="cli")
    except BadInput as exc:
        raise _BadInput(str(exc)) from None
    finally:
        engine.dispose()
    click.echo(token)
    click.echo(f"token {name!r} created; it will not be shown again: keep it now", err=True)


@tokens.command("revoke")
@click.argument("name")
def tokens_revoke(name: str) -> None:
    """Revoke the token NAME at once (exit 2 if there is none)."""
    from datetime import UTC, datetime

    from core import tokens as store

    engine, _ = _token_store()
    try:
        with engine.begin() as conn:
            found = store.revoke(conn, name, datetime.now(UTC), actor="cli")
    finally:
        engine.dispose()
    if not found:
        raise _BadInput(f"no token named {name!r}")
    click.echo(f"token {name!r} revoked")


@tokens.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def tokens_list(fmt: str) -> None:
    """Every token with its scopes and state; never the token or its hash."""
    from datetime import UTC, datetime

    from core import tokens as store
    from core.db import reader

    engine, _ = _token_store()
    try:
        with reader(engine).connect() as conn:
            found = store.listing(conn)
    finally:
        engine.dispose()
    now = datetime.now(UTC)
    if fmt == "json":
        click.echo(json.dumps([{
            "name": t.name, "scopes": list(t.scopes), "status": t.status(now),
            **{k: (v.isoformat() if v is not None else None) for k, v in (
                ("created_at", t.created_at), ("expires_at", t.expires_at),
                ("revoked_at", t.revoked_at), ("last_used_at", t.last_used_at))}}
            for t in found]))
        return
    if not found:
        click.echo("no tokens; create one with `privasync tokens create NAME --scope S`")
    for t in found:
        expires = f"{t.expires_at:%Y-%m-%d}" if t.expires_at else "never"
        used = f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never"
        click.echo(f"{t.name:<24} {t.status(now):<8} expires {expires:<10} last used "
                   f"{used:<16} {' '.join(t.scopes)}")


@main.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def status(fmt: str) -> None:
    """Deliveries waiting to be applied, events that could not be applied, and jobs by
    destination and status."""
    from sqlalchemy import select

    from core import inbox, outbox
    from core.db import event_counts, reader
    from privasync.app.database import open_current

    engine = reader(open_current(_settings().database_url))
    with engine.connect() as conn:
        backlog = inbox.backlog(conn)
        counts = outbox.counts(conn)
        events = {(r.source, r.outcome): int(r.n) for r in conn.execute(select(event_counts))}
    unapplied = {k: n for k, n in events.items() if k[1] in UNAPPLIED}
    if fmt == "json":
        click.echo(json.dumps({
            "inbox": {"rows": backlog.rows, "events": backlog.events,
                      "oldest": backlog.oldest.isoformat() if backlog.oldest else None,
                      "failed_rows": backlog.failed},
            "events_not_applied": [{"source": s, "reason": o, "events": n}
                                   for (s, o), n in sorted(unapplied.items())],
            "jobs": [{"destination": d, "status": s, "jobs": n}
                     for (d, s), n in sorted(counts.items())]}))
        return
    oldest = f", oldest from {backlog.oldest:%Y-%m-%d %H:%M:%S %Z}" if backlog.oldest else ""
    click.echo(f"inbox: {backlog.rows} deliveries ({backlog.events} events) waiting{oldest}; "
               f"{backlog.failed} given up on")
    for (source, reason), n in sorted(unapplied.items()):
        click.echo(f"not applied: {n} {source} event(s), {reason}")
    for (destination, state), n in sorted(counts.items()):
        click.echo(f"{destination:<28} {state:<10} {n:>8}")


UNAPPLIED = ("unknown_subject", "invalid", "failed")


@main.command()
@click.option("--contacts", default=5, show_default=True, help="Contacts to seed.")
def demo(contacts: int) -> None:
    """Unsubscribe once in HubSpot and watch every system catch up (on emulators)."""
    from privasync.demo.run import run_demo

    sys.exit(run_demo(contacts))


def _register() -> None:
    from privasync.cli.config import check, config_group
    from privasync.cli.health import health
    from privasync.cli.jobs import jobs_group
    from privasync.cli.keys import keys_group
    from privasync.cli.restore import restore_check
    from privasync.cli.smoke import smoke
    from privasync.cli.subject_requests import breach_group, requests_group

    main.add_command(health)
    main.add_command(jobs_group)
    main.add_command(requests_group)
    main.add_command(breach_group)
    main.add_command(config_group)
    main.add_command(check)
    main.add_command(keys_group)
    main.add_command(restore_check)
    main.add_command(smoke)


_register()
