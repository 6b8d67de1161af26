"""Partners and processors as the app sees them: one connection per partner in
``partners.yaml`` (its secrets from the variables it names), and what they post to
``/webhooks/partners/{name}/{kind}``: signed acknowledgements and requests, or OpenDSR
status callbacks."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from connectors.partner import signed
from connectors.partner.destination import PartnerConnector
from connectors.partner.opendsr import OpenDsrConnector
from connectors.plugin import CheckText, Connection, Context, Delivery, Intake, Plugin, Route
from core import inbox
from core.errors import ConfigError, Forbidden, Unauthenticated
from core.mappings import Partner, PartnerProtocol

PREFIX = "partner:"
KINDS = ("ack", "requests", "opendsr")


def connect(_: None, ctx: Context) -> dict[str, Callable[[], Connection]]:
    return {f"{PREFIX}{name}": functools.partial(_connection, ctx, name, partner)
            for name, partner in ctx.mappings.partners.items()}


def _connection(ctx: Context, name: str, partner: Partner) -> Connection:
    connector = build(ctx, name, partner)
    return Connection(connector, parser=signed.parsing(
        connector.parse_message if isinstance(connector, PartnerConnector)
        else connector.parse_callback))


def build(ctx: Context, name: str, partner: Partner) -> PartnerConnector | OpenDsrConnector:
    """Raises ConfigError naming the variable to set."""
    url = ctx.environ.get(partner.url_setting or "", "") or partner.url
    if partner.protocol is PartnerProtocol.OPENDSR:
        return _opendsr(ctx, name, partner, url)
    secret = ctx.environ.get(partner.secret_setting, "")
    if not secret:
        raise ConfigError(f"partner {name}: {partner.secret_setting} (its signing secret) is "
                          "not set: set it in the environment or the secrets directory, or "
                          "remove the partner from partners.yaml")
    return PartnerConnector(name=name, partner=partner, url=url, secret=secret,
                            keys=ctx.keyring)


def _opendsr(ctx: Context, name: str, partner: Partner, url: str) -> OpenDsrConnector:
    """A processor speaking OpenDSR: its callbacks come to our public URL, signed with the
    certificate pinned in the environment (the PEM itself, or a path to it)."""
    if not ctx.public_url:
        raise ConfigError(f"partner {name} speaks OpenDSR: set PRIVASYNC_PUBLIC_URL, the base "
                          "URL its status callbacks reach privasync at")
    pinned = ctx.environ.get(partner.certificate_setting or "", "")
    if not pinned:
        raise ConfigError(f"partner {name}: environment variable {partner.certificate_setting} "
                          "(its pinned certificate) is not set")
    if not pinned.lstrip().startswith("-----BEGIN"):
        try:
            pinned = Path(pinned).read_text()
        except OSError as exc:
            raise ConfigError(f"partner {name}: the certificate file named by "
                              f"{partner.certificate_setting} cannot be read") from exc
    return OpenDsrConnector(
        name=name, partner=partner, url=url, certificate_pem=pinned,
        callback_url=f"{ctx.public_url.rstrip('/')}/webhooks/partners/{name}/opendsr",
        api_secret=ctx.environ.get(partner.secret_setting, "") or None)


def routes(_: None, built: Mapping[str, Connection]) -> Sequence[Route]:
    partners = {name.removeprefix(PREFIX): c.connector for name, c in built.items()}

    def admit(params: Mapping[str, str]) -> None:
        if params["kind"] not in KINDS:
            raise ConfigError("partners post to .../ack, .../requests or .../opendsr")

    def receive(intake: Intake, delivery: Delivery) -> inbox.Stored:
        name, kind = delivery.params["name"], delivery.params["kind"]
        if kind == "opendsr":
            return opendsr_callback(intake, partners.get(name), name, delivery)
        return partner_message(intake, partners.get(name), name, kind, delivery)

    return [Route("/webhooks/partners/{name}/{kind:str}", ("POST",), "partner", receive,
                  admit=admit)]


def partner_message(intake: Intake, partner: object, name: str, kind: str,
                    delivery: Delivery) -> inbox.Stored:
    """A partner's signed acknowledgement (``kind`` "ack") or a request it passes on
    ("requests"). A forged, stale or replayed one (an event id seen before) is refused
    and changes nothing."""
    if not isinstance(partner, PartnerConnector):
        raise ConfigError("no partner of that name takes signed messages")
    body, headers, now = delivery.body, delivery.headers, delivery.now
    with intake.serving():
        event_id = partner.verify_ack(headers, body, now)
        parse = partner.parse_ack if kind == "ack" else partner.parse_ask
        events = list(parse(body, now))
        # A hash of the id, not its first characters: ids of up to 200 characters that
        # share a prefix are different events.
        # The body as signed, with its signature headers: the proof is checkable later.
        stored = intake.store(f"{PREFIX}{name}", signed.wrap(body, headers, signed.OWN_HEADERS),
                              now, len(events),
                              key=intake.delivery_key(f"event:{event_id}".encode()),
                              again="replayed")
    if stored.duplicate:
        intake.rejected(f"{PREFIX}{name}", "Replayed")
        raise Unauthenticated("this event id was delivered before: a replay changes nothing")
    return stored


def opendsr_callback(intake: Intake, partner: object, name: str,
                     delivery: Delivery) -> inbox.Stored:
    """A processor's OpenDSR status callback, verified against its pinned certificate.
    Callbacks come at least once: the same status again is answered and stored once.
    A signature that fails is Forbidden (403): OpenDSR v2.0 §8.8 step 5."""
    if not isinstance(partner, OpenDsrConnector):
        raise ConfigError("no OpenDSR processor of that name")
    body, headers, now = delivery.body, delivery.headers, delivery.now
    with intake.serving():
        try:
            partner.verify_callback(headers, body, now)
        except Unauthenticated as exc:
            raise Forbidden(str(exc)) from exc
        events = partner.parse_callback(body, now)
        # Deduplicated on the body alone: the same status again is stored once.
        return intake.store(f"{PREFIX}{name}", signed.wrap(body, headers,
                                                           signed.OPENDSR_HEADERS),
                            now, len(events), key=intake.delivery_key(body))


CHECK = CheckText(fixes={
    "opendsr_discovery": "ask the processor to support what is named (or change the "
                         "partner's identifiers in partners.yaml)",
    "opendsr_certificate": "pin the processor's current CA-issued certificate in the variable "
                           "its certificate_setting in partners.yaml names",
})

PLUGIN: Plugin[None] = Plugin(
    name="partner", settings=None, connect=connect, routes=routes, check=CHECK)
