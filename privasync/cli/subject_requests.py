"""``privasync requests ...`` and ``privasync breach scope``: what customer service and the
DPO type. Every refusal is one line and exit code 2 (the root command's handler, for
BadInput and its NotFound/Conflict); ``--format json`` for machines."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from core.model import RequestKind, RequestStep
from privasync.cli import context, output

ACTOR = "cli"
_DURATION = re.compile(r"^(\d+)\s*([dhm])$")


def duration(text: str) -> timedelta:
    match = _DURATION.match(text.strip())
    if match is None:
        raise click.BadParameter("use a number and d, h or m, e.g. 7d")
    n, unit = int(match[1]), match[2]
    return {"d": timedelta(days=n), "h": timedelta(hours=n), "m": timedelta(minutes=n)}[unit]


def moment(text: str) -> datetime:
    """An ISO 8601 date (midnight UTC) or date-time (UTC if it names no zone)."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter("use an ISO 8601 date or date-time, e.g. 2026-01-31") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def _say_stored(request_id: str, applied: bool, fmt: str) -> None:
    if fmt == output.JSON:
        click.echo(json.dumps({"id": request_id, "applied": applied}))
        return
    click.echo(request_id)
    if not applied:
        click.echo("stored; privasync applies it as soon as its applier runs "
                   "(privasync serve or scheduler)", err=True)


@click.group("requests")
def requests_group() -> None:
    """Data-subject requests: erasure, access, portability, objection, rectification."""


@requests_group.command("create")
@click.option("--kind", required=True, type=click.Choice([k.value for k in RequestKind]))
@click.option("--email", required=True, help="The address the person gave.")
@click.option("--received", type=moment, default=None,
              help="When the request came in (default: now); the deadline counts from it.")
@click.option("--identity", type=click.Choice(["verified", "unverified"]), default=None,
              help="Required: whether the person's identity was checked. `unverified` asks "
                   "them to prove it (Art. 12(6)): the clock stops until `verify-identity`.")
@click.option("--field", "fields", multiple=True, metavar="NAME=VALUE",
              help="A corrected value (rectification), by canonical field name.")
@output.format_option()
def create(kind: str, email: str, received: datetime | None, identity: str | None,
           fields: tuple[str, ...], fmt: str) -> None:
    """Record a request; prints its id (the person's reference)."""
    from core.errors import BadInput
    from privasync.app import subject_requests

    if identity is None:  # never assumed: an unchecked asker must not be served as checked
        raise BadInput("say whether the person's identity was checked: --identity verified "
                       "or --identity unverified (asks them to prove it, Art. 12(6))")
    corrected = dict(f.split("=", 1) for f in fields if "=" in f)
    if len(corrected) != len(fields):
        raise click.UsageError("--field takes NAME=VALUE")
    container = context.build()
    try:
        stored = subject_requests.create(container, kind=RequestKind(kind), email=email,
                                       received=received,
                                       identity_verified=identity == "verified",
                                       fields=corrected, actor=ACTOR)
    finally:
        container.close()
    _say_stored(stored.request_id, stored.applied, fmt)


@requests_group.command("list")
@click.option("--due-within", type=duration, default=None, help="Open ones due within, e.g. 7d.")
@click.option("--overdue", is_flag=True, help="Open ones past due, or with an ack overdue.")
@click.option("--status", default=None)
@click.option("--kind", type=click.Choice([k.value for k in RequestKind]), default=None)
@output.format_option(listing=True)
def listing(due_within: timedelta | None, overdue: bool, status: str | None, kind: str | None,
            fmt: str) -> None:
    """Requests, the soonest due first."""
    from core import subject_requests as rq
    from core.db import reader
    from privasync.app.bootstrap import utcnow
    from privasync.app.subject_requests import summary

    # A listing reads the requests table only: no vendor credential or partner secret is
    # needed to see what is due (the database alone, as `privasync status`).
    engine = reader(context.current_engine())
    try:
        now = utcnow()
        with engine.connect() as conn:
            found = rq.listing(conn, now, kind=kind, status=status, due_within=due_within,
                               overdue=overdue)
    finally:
        engine.dispose()
    rows = [summary(r, now) for r in found]
    if fmt == output.JSON:
        click.echo(json.dumps(rows, indent=2))
        return
    output.rows(fmt, ["id", "kind", "status", "due", "attention"],
                [(r["id"], r["kind"], r["status"], r["due_at"][:16], _attention(r))
                 for r in rows])


def _attention(r: dict[str, Any]) -> str:
    """What in a listed request wants someone: overdue, acknowledgements, identity."""
    said = ["OVERDUE"] if r["overdue"] else []
    if r["acks_overdue"]:
        said.append(f"acks overdue: {', '.join(r['acks_overdue'])}")
    if r["identity_overdue"]:
        said.append(f"IDENTITY OVERDUE since {r['identity_due_at'][:16]}")
    if r["status"] == "identity_pending" and r["note"]:
        said.append(f"note: {r['note']}")
    return "; ".join(said)


@requests_group.command("show")
@click.argument("request_id")
@output.format_option()
def show(request_id: str, fmt: str) -> None:
    """The whole story of a request, with times."""
    from privasync.app.evidence import story

    container = context.build()
    try:
        told = story(container, request_id)
    finally:
        container.close()
    if fmt == output.JSON:
        click.echo(json.dumps(told, indent=2))
        return
    due = f", due {told['due_at']}" if told["due_at"] else f" ({told['note']})"
    click.echo(f"{told['id']}: {told['kind']}, {told['status']}, received "
               f"{told['received_at']}{due}{' (OVERDUE)' if told['overdue'] else ''}")
    if told["identity_due_at"] and told["status"] == "identity_pending":
        late = " (IDENTITY OVERDUE: verify or reject it)" if told["identity_overdue"] else ""
        click.echo(f"  identity asked for, proof due {told['identity_due_at']}{late}")
    output.table(["destination", "status", "reason"],
                 [(d["destination"], d["status"], d["reason"]) for d in told["destinations"]])
    for d in told["destinations"]:
        for key, said in (("held_for_review", "held for review (not sent to the person)"),
                          ("included_after_review", "included after review"),
                          ("excluded_after_review", "excluded after review (dropped)")):
            if d["receipt"].get(key):
                click.echo(f"  {d['destination']}: {said}: {', '.join(d['receipt'][key])}")
    if told["not_configured"]:
        click.echo(f"  not configured here, never asked: {', '.join(told['not_configured'])}")
    if told["note"]:
        click.echo(f"  note: {told['note']}")
    output.table(["at", "event", "details"], [
        (h["at"][:19], h["event"],
         ", ".join(f"{k}={v}" for k, v in h.items() if k not in ("at", "event")))
        for h in told["history"]])


def _step(step: RequestStep, **fixed: Any) -> Callable[..., None]:
    def run(request_id: str, **options: Any) -> None:
        from privasync.app import subject_requests

        container = context.build()
        try:
            stored = subject_requests.act(container, request_id, step, actor=ACTOR,
                                        **(fixed | options))
        finally:
            container.close()
        _say_stored(stored.request_id, stored.applied, output.TABLE)
    return run


requests_group.command("verify-identity", help="Identity checked: the clock runs again.")(
    click.argument("request_id")(_step(RequestStep.VERIFY_IDENTITY)))
requests_group.command("extend", help="Extend once by 1 or 2 months, with a reason.")(
    click.argument("request_id")(click.option("--months", type=int, required=True)(
        click.option("--reason", required=True)(_step(RequestStep.EXTEND)))))
requests_group.command("reject", help="Refuse, with a reason (the person is told and may "
                       "complain to the supervisory authority).")(
    click.argument("request_id")(click.option("--reason", required=True)(
        _step(RequestStep.REJECT))))
requests_group.command("not-applicable", help="A destination does not apply, with a reason.")(
    click.argument("request_id")(click.argument("destination")(click.option(
        "--reason", required=True)(_step(RequestStep.NOT_APPLICABLE)))))
requests_group.command("retry", help="Try failed destinations again.")(
    click.argument("request_id")(click.option("--destination", default="")(
        _step(RequestStep.RETRY))))


@requests_group.command("review")
@click.argument("request_id")
@click.option("--include", "included", multiple=True, metavar="RECORD_ID",
              help="A record held for review that is the person's: it joins the answer.")
@click.option("--exclude", "excluded", multiple=True, metavar="RECORD_ID",
              help="A record held for review that is not the person's: it is dropped.")
@click.option("--reason", required=True, help="Why (sealed under the person's key; the "
              "ledger keeps its salted hash).")
def review(request_id: str, included: tuple[str, ...], excluded: tuple[str, ...],
           reason: str) -> None:
    """Decide records held for review (as `requests show` lists them), each once: an
    included one joins the access answer, an excluded one is dropped. A record held at
    two systems is named DESTINATION:RECORD."""
    from core.model import EXCLUDE, INCLUDE

    records = tuple((r, INCLUDE) for r in included) + tuple((r, EXCLUDE) for r in excluded)
    _step(RequestStep.REVIEW)(request_id, reason=reason, records=records)


@requests_group.command("export")
@click.argument("request_id")
@click.option("--out", "out", type=click.Path(path_type=Path, dir_okay=False), required=True)
@click.option("--format", "fmt", type=click.Choice(["json", "markdown"]), default="json")
def export(request_id: str, out: Path, fmt: str) -> None:
    """Write the access bundle: JSON (its schema is published) or a Markdown summary."""
    from privasync.app.access_bundle import bundle, markdown

    container = context.build()
    try:
        with output.progress("gathering the access bundle"):
            made = bundle(container, request_id)
    finally:
        container.close()
    text = markdown(made) if fmt == "markdown" else made.model_dump_json(by_alias=True,
                                                                         indent=2)
    from privasync.app.keyfiles import write_private

    write_private(out, text, private_parent=False)  # 0600 from its first byte
    click.echo(f"wrote {out} ({len(made.systems)} system(s), "
               f"{sum(len(s.fields) for s in made.systems)} field(s))")


@requests_group.command("evidence")
@click.argument("request_id", required=False)
@click.option("--out", "out", type=click.Path(path_type=Path, dir_okay=False), default=None)
@click.option("--verify", "verify", type=click.Path(path_type=Path, dir_okay=False),
              default=None, help="Check the pack in FILE offline (no database): exit 0 if "
              "all holds, 1 if something does not, 2 if FILE is not a pack.")
def evidence(request_id: str | None, out: Path | None, verify: Path | None) -> None:
    """An evidence pack: the request's ledger entries and the chain segment linking them;
    or, with --verify FILE, check one offline."""
    from core.errors import BadInput

    if verify is not None and request_id is None and out is None:
        _verify_pack(verify)
        return
    if request_id is None or verify is not None:
        raise BadInput("give a REQUEST_ID (and --out FILE) to make a pack, or --verify FILE "
                       "alone to check one")
    from privasync.app.evidence import evidence as pack

    container = context.build()
    try:
        text = json.dumps(pack(container, request_id), indent=2, ensure_ascii=False)
    finally:
        container.close()
    if out is None:
        click.echo(text)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"wrote {out}")


def _verify_pack(path: Path) -> None:
    """One line per check, what holds and what does not; exit 1 naming the first break."""
    from privasync.app.evidence_check import SIGNATURE, load, verify

    findings = verify(load(path))
    for f in findings:
        click.echo(f"{'holds' if f.holds else 'FAILS'}  {f.what}: {f.detail}")
    click.echo(f"note   signature: {SIGNATURE}")
    broken = next((f for f in findings if not f.holds), None)
    if broken is not None:
        click.echo(f"BROKEN: {broken.detail}", err=True)
        raise click.exceptions.Exit(1)
    click.echo(f"pack {path} holds")


@click.group("breach")
def breach_group() -> None:
    """Scoping a breach at a destination (Art. 33, 34)."""


@breach_group.command("scope")
@click.option("--destination", required=True)
@click.option("--from", "start", type=moment, required=True)
@click.option("--to", "end", type=moment, required=True)
@output.format_option()
def scope(destination: str, start: datetime, end: datetime, fmt: str) -> None:
    """Which people (ids) DESTINATION may expose in the window, each once: those privasync
    sent something to then (with the field names) and those it holds according to
    privasync's stored references there."""
    from privasync.app.breach import breach_scope

    container = context.build()
    try:
        found = breach_scope(container.engine, container.mappings,
                             container.every_destination(), destination, start, end)
    finally:
        container.close()
    if fmt == output.JSON:
        click.echo(json.dumps(found, indent=2))
        return
    click.echo(f"{destination}, {found['from']} to {found['to']}: {found['people']} people "
               f"({found['people_sent']} sent something by privasync in the window, "
               f"{found['people_held']} held there per privasync's references; each person "
               f"counted once); fields sent: {', '.join(found['fields']) or 'none'}; "
               f"identifiers: {', '.join(found['identifiers_sent'])}")
    output.table(["subject", "why", "fields", "since"], [
        (s["subject_id"], "+".join(s["why"]), ",".join(s["fields"]) or "-",
         (s["first"] or s["referenced_since"] or "")[:19]) for s in found["subjects"]])
