"""``privasync smoke``: the first contact with the real vendors, end to end.

A test person (the operator's own address, plus-tagged so every run is a new person: an
erased address stays suppressed, by design) is created subscribed in every configured
system, unsubscribed in one, watched until every other system agrees, erased through
privasync (an erasure request, as ``privasync requests create --kind erasure``), and
checked gone from every vendor; whatever it created and is still there is removed at the
end, whatever failed. It talks to each vendor directly (``connectors/*/smoke.py``), never
through the connectors it checks, and needs privasync RUNNING on the same settings and
database (serve + worker + scheduler, or the embedded ``privasync serve``).

One line a step: step, system, seconds, OK or FAIL (and what to look at). The address is
never printed or logged: only its tag.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Protocol, TypeVar

import click

from core.errors import BadInput, ConfigError, DeliveryError, TransientError
from privasync.cli import context, output
from privasync.cli.errors import CheckFailed, OperatorError

if TYPE_CHECKING:
    from core.mappings import Mappings
    from core.subject_requests import Request
    from privasync.app.bootstrap import Container
    from privasync.app.settings import Settings

# The default --unsubscribe-in is the first configured; any other system comes after these.
FIRST = ("salesforce", "hubspot", "mailchimp")
ACTOR = "smoke"
POLL_SECONDS = 0.5
T = TypeVar("T")


class SmokeSystem(Protocol):
    """What the smoke does in one vendor (connectors/<vendor>/smoke.py)."""

    name: str

    def create(self, address: str) -> None: ...
    def unsubscribe(self, address: str) -> None: ...
    def opted_out(self, address: str) -> bool: ...
    def holds(self, address: str) -> bool: ...
    def remove(self, address: str) -> bool: ...
    def close(self) -> None: ...


def tagged(address: str) -> tuple[str, str]:
    """``name+privasync-smoke-<8 hex>@domain`` and its tag (a tag already there is dropped)."""
    local, _, domain = address.rpartition("@")
    tag = f"privasync-smoke-{secrets.token_hex(4)}"
    return f"{local.partition('+')[0]}+{tag}@{domain}", tag


def configured(settings: Settings) -> list[str]:
    """The systems whose settings are present, in ``order()``."""
    from privasync.app.plugins import smoke_ready

    ready = smoke_ready(settings)
    return [s for s in order() if s in ready]


def order() -> tuple[str, ...]:
    """Every system the smoke can drive: FIRST in its order, then any other plug-in's."""
    from privasync.app.plugins import smoke_order

    return smoke_order(FIRST)


class _Systems(click.Choice[str]):
    """``--unsubscribe-in``'s choices, asked of the plug-ins only when a value or the help
    needs them: importing every connector at start-up would slow every command."""

    def __init__(self) -> None:
        super().__init__(())

    @property
    def choices(self) -> tuple[str, ...]:
        return order()

    @choices.setter
    def choices(self, _value: object) -> None:
        pass


def make_systems(settings: Settings, mappings: Mappings,
                 names: list[str]) -> dict[str, SmokeSystem]:
    """The smoke's own client for each named system, from the settings."""
    from privasync.app.plugins import smoke_client

    return {name: smoke_client(settings, mappings, name) for name in names}


def reason(system: str, exc: Exception) -> str:
    """Why a call failed, without its message (a vendor's may quote the address)."""
    if isinstance(exc, DeliveryError):
        return f"{system} refused: {exc.error_class} ({type(exc).__name__})"
    if isinstance(exc, ConfigError | BadInput):
        return str(exc).splitlines()[0]
    return f"{type(exc).__name__} talking to {system}"


def applier_running(container: Container) -> bool:
    """Whether some process holds an unexpired applier lease on this database."""
    from sqlalchemy import select

    from core.applier import LEASE
    from core.db import leases, reader

    with reader(container.engine).connect() as conn:
        expires = conn.execute(select(leases.c.expires_at).where(
            leases.c.name == LEASE)).scalar_one_or_none()
    return expires is not None and expires > container.clock()


@dataclass
class Smoke:
    container: Container
    systems: dict[str, SmokeSystem]
    address: str
    unsubscribe_in: str
    timeout: float
    echo: Callable[[str], None] = click.echo
    poll: float = POLL_SECONDS
    failed: list[str] = field(default_factory=list)
    touched: list[str] = field(default_factory=list)

    # -- reporting --------------------------------------------------------------------
    def line(self, step: str, system: str, seconds: float, ok: bool, note: str = "") -> None:
        if not ok:
            self.failed.append(f"{step} {system}")
        self.echo(f"{step:<12} {system:<11} {seconds:7.1f}s  {'OK' if ok else 'FAIL'}"
                  + (f"  {note}" if note else ""))

    def do(self, step: str, system: str, action: Callable[[], T],
           note: Callable[[T], str] | None = None) -> tuple[bool, T] | tuple[bool, None]:
        """Run one step, say how it went; a failure is a FAIL line, never an exception."""
        start = time.monotonic()
        try:
            got = action()
        except Exception as exc:  # noqa: BLE001 - every failure is one FAIL line, by class
            self.line(step, system, time.monotonic() - start, False, reason(system, exc))
            return False, None
        self.line(step, system, time.monotonic() - start, True,
                  note(got) if note is not None else "")
        return True, got

    def wait(self, step: str, checks: Mapping[str, Callable[[], bool]], since: float,
             late: Callable[[str], str]) -> bool:
        """Poll every check until it holds (a line each, seconds from ``since``) or the
        timeout passes (a FAIL line each, saying ``late(system)``). A transient read
        failure is tried again; any other ends that check at once."""
        with output.progress(f"{step}: waiting for {', '.join(checks)}"):
            return self._poll(step, dict(checks), since, late)

    def _poll(self, step: str, pending: dict[str, Callable[[], bool]], since: float,
              late: Callable[[str], str]) -> bool:
        start = time.monotonic()
        while pending:
            for system, check in list(pending.items()):
                try:
                    held = check()
                except TransientError:
                    held = False
                except Exception as exc:  # noqa: BLE001 - one FAIL line, by class
                    self.line(step, system, time.monotonic() - since, False,
                              reason(system, exc))
                    del pending[system]
                    continue
                if held:
                    self.line(step, system, time.monotonic() - since, True)
                    del pending[system]
            if pending and time.monotonic() - start >= self.timeout:
                for system in pending:
                    self.line(step, system, time.monotonic() - since, False, late(system))
                return False
            if pending:
                time.sleep(self.poll)
        return not any(f.startswith(step + " ") for f in self.failed)

    # -- the steps ------------------------------------------------------------------
    def run(self) -> bool:
        try:
            request_id = self._prepare() and self._unsubscribe() and self._erase()
            if request_id and self._complete(request_id):
                self._gone(request_id)
        finally:
            self._cleanup()
        return not self.failed

    def _prepare(self) -> bool:
        for name, system in self.systems.items():
            self.touched.append(name)
            if not self.do("create", name, partial(system.create, self.address))[0]:
                return False
        return self.wait("learn", {"privasync": self._known}, time.monotonic(), lambda _: (
            f"privasync has not learnt the address within {self.timeout:.0f} s: are the "
            "vendors' webhooks reaching it, and is its scheduler (Salesforce poller) and "
            "applier running? see privasync status"))

    def _known(self) -> bool:
        from core import keys
        from core.db import reader

        keys.refresh(self.container.engine, self.container.keyring)
        with reader(self.container.engine).connect() as conn:
            return self.container.identity.by_email(conn, self.address) is not None

    def _unsubscribe(self) -> bool:
        source = self.systems[self.unsubscribe_in]
        if not self.do("unsubscribe", source.name, lambda: source.unsubscribe(self.address))[0]:
            return False
        since = time.monotonic()
        others = {n: partial(s.opted_out, self.address)
                  for n, s in self.systems.items() if n != self.unsubscribe_in}
        unheard = (" (does the Mailchimp webhook send changes made by the API? see README)"
                   if source.name == "mailchimp" else "")
        return self.wait("agree", others, since, lambda n: (
            f"{n} still reads subscribed after {self.timeout:.0f} s{unheard}: see privasync "
            f"jobs list --destination {n} and privasync status"))

    def _erase(self) -> str | None:
        from core.model import RequestKind
        from privasync.app import subject_requests

        def erase() -> subject_requests.Stored:
            return subject_requests.create(
                self.container, kind=RequestKind.ERASURE, email=self.address, actor=ACTOR,
                identity_verified=True)  # the smoke's own test contact: nobody to ask

        def said(stored: subject_requests.Stored) -> str:
            return f"request {stored.request_id}"

        ok, stored = self.do("erase", "privasync", erase, note=said)
        return stored.request_id if ok and stored is not None else None

    def _complete(self, request_id: str) -> bool:
        from core import subject_requests as rq

        def done() -> bool:
            request = self._request(request_id)
            if request is not None and request.status == rq.REJECTED:
                raise BadInput(f"erasure request {request_id} was rejected: privasync "
                               f"requests show {request_id}")
            return request is not None and request.status == rq.COMPLETED

        def late(_: str) -> str:
            request = self._request(request_id)
            waiting = [f"{d.name} {d.status}" for d in (request.destinations if request else ())
                       if d.status not in rq.FINAL]
            return (f"erasure request {request_id} not complete after {self.timeout:.0f} s"
                    f" (waiting: {', '.join(waiting) or 'privasync'}): privasync requests "
                    f"show {request_id}")
        return self.wait("complete", {"privasync": done}, time.monotonic(), late)

    def _request(self, request_id: str) -> Request | None:
        from core import subject_requests as rq
        from core.db import reader

        with reader(self.container.engine).connect() as conn:
            return rq.get(conn, request_id)

    def _gone(self, request_id: str) -> bool:
        checks = {n: partial(_lacks, s, self.address) for n, s in self.systems.items()}
        return self.wait("gone", checks, time.monotonic(), lambda n: (
            f"{n} still holds the address after {self.timeout:.0f} s although the request is "
            f"complete: privasync requests show {request_id}"))

    def _cleanup(self) -> None:
        for name in self.touched:
            system = self.systems[name]
            self.do("cleanup", name, partial(system.remove, self.address),
                    note=lambda removed: "removed what was left" if removed else "nothing left")


def _lacks(system: SmokeSystem, address: str) -> bool:
    return not system.holds(address)


def run_smoke(settings: Settings, *, address: str, unsubscribe_in: str | None, timeout: float,
              echo: Callable[[str], None] = click.echo) -> tuple[bool, str]:
    """The whole smoke; returns (passed, tag). Raises ConfigError or BadInput (exit 2)
    before anything is written when the settings, the address or privasync are not ready."""
    from privasync.app.bootstrap import build
    from privasync.app.subject_requests import valid_email

    valid_email(address)
    names = configured(settings)
    if not names:
        raise ConfigError("no system is configured: set PRIVASYNC_HUBSPOT__ACCESS_TOKEN, "
                          "PRIVASYNC_SALESFORCE__INSTANCE_URL (and its credentials) or "
                          "PRIVASYNC_MAILCHIMP__API_KEY and LIST_ID")
    chosen = unsubscribe_in or names[0]
    if chosen not in names:
        raise ConfigError(f"--unsubscribe-in {chosen}: {chosen} is not configured here "
                          f"(configured: {', '.join(names)})")
    if timeout <= 0:
        raise BadInput("--timeout must be more than 0 seconds")
    container = build(settings)
    systems: dict[str, SmokeSystem] = {}
    try:
        if not applier_running(container):
            raise ConfigError("privasync is not running on these settings (no applier holds "
                              "its lease in this database): start privasync serve, or serve, "
                              "worker and scheduler, then run the smoke again")
        systems = make_systems(settings, container.mappings, names)
        person, tag = tagged(address)
        echo(f"smoke {tag}: {', '.join(names)}; unsubscribing in {chosen}; each wait "
             f"at most {timeout:.0f} s")
        smoke = Smoke(container, systems, person, chosen, timeout, echo=echo)
        return smoke.run(), tag
    finally:
        for system in systems.values():
            system.close()
        container.close()


@click.command("smoke")
@click.option("--address", required=True,
              help="Your own e-mail address; each run uses a new plus-tagged form of it "
                   "(name+privasync-smoke-<8 hex>@domain), never printed.")
@click.option("--unsubscribe-in", type=_Systems(), default=None,
              help="Where the test person unsubscribes (default: the first configured of "
                   "salesforce, hubspot, mailchimp).")
@click.option("--timeout", type=float, default=300.0, show_default=True,
              help="Seconds each wait may take.")
@click.option("--i-understand-this-writes", "writes", is_flag=True,
              help="Required: the smoke creates, changes and deletes a contact in every "
                   "configured system and opens an erasure request in privasync.")
def smoke(address: str, unsubscribe_in: str | None, timeout: float, writes: bool) -> None:
    """Create a test contact in every configured vendor, unsubscribe it in one, wait until
    the others agree, erase it through privasync and check every vendor lets it go.

    Needs privasync RUNNING on the same settings and database (privasync serve, or serve +
    worker + scheduler). Writes to the real systems: HubSpot blocklists the erased address,
    Salesforce's queryAll shows the purged Contact as deleted for about a day, Mailchimp
    never lets it be imported again, privasync keeps the erasure request and the
    suppression entry.
    One line a step; exit 0 when every step passed, 1 when one failed, 2 for bad usage
    or settings (nothing written)."""
    if not writes:
        raise OperatorError("privasync smoke writes to every configured system (creates, "
                            "unsubscribes and erases a test contact): run it again with "
                            "--i-understand-this-writes")
    passed, tag = run_smoke(context.settings(), address=address, unsubscribe_in=unsubscribe_in,
                            timeout=timeout)
    if not passed:
        raise CheckFailed(f"smoke {tag} failed; each FAIL line above says what to look at")
    click.echo(f"smoke {tag} passed")
