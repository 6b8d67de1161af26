"""``privasync check``: try each configured system with the credentials given, and say in
one line per system whether it works or what to change.

Each system is built and checked on its own, so one missing secret does not hide
what is wrong with the others. Messages name settings and error classes, never a
secret or a personal value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from core.errors import AuthError, ConfigError, DeliveryError, TransientError
from core.mappings import Mappings
from privasync.app.environment import mask_url
from privasync.app.mapping_warnings import ENABLED_BY, configured
from privasync.app.settings import Settings

# What to change, by the error class a connector's check raised.
FIXES = {
    "hubspot_scopes": "add them to the private app (Settings > Integrations > Private Apps "
                      "> Scopes) and set the new token in PRIVASYNC_HUBSPOT__ACCESS_TOKEN",
    "hubspot_mapping": "fix consent.subscriptions in hubspot.yaml to the portal's ids",
    "hubspot_properties": "fix fields in hubspot.yaml to the portal's contact property names "
                          "(Settings > Properties), or create them; never map a read-only one",
    "salesforce_version": "set PRIVASYNC_SALESFORCE__API_VERSION to one the org serves",
    "salesforce_permissions": "grant them to the integration user's profile or a permission "
                              "set (Object Settings: object and field access; System "
                              "Permissions: Bulk API Hard Delete)",
    "mailchimp_list": "set PRIVASYNC_MAILCHIMP__LIST_ID to the audience's id (Audience > "
                      "Settings > Audience name and defaults)",
    "opendsr_discovery": "ask the processor to support what is named (or change the "
                         "partner's identifiers in partners.yaml)",
    "opendsr_certificate": "pin the processor's current CA-issued certificate in the variable "
                           "its certificate_setting in partners.yaml names",
    "mailchimp_webhook": "add or edit the audience's webhook (Audience > Settings > Webhooks) "
                         "to PRIVASYNC_PUBLIC_URL/webhooks/mailchimp/ followed by "
                         "PRIVASYNC_MAILCHIMP__WEBHOOK_TOKEN, with those events and sources",
}
CREDENTIALS = {
    "hubspot": "PRIVASYNC_HUBSPOT__ACCESS_TOKEN",
    "salesforce": "PRIVASYNC_SALESFORCE__SESSION_ID or __USERNAME/__PASSWORD/__SECURITY_TOKEN",
    "mailchimp": "PRIVASYNC_MAILCHIMP__API_KEY",
}
ADDRESS = {
    "hubspot": "PRIVASYNC_HUBSPOT__BASE_URL",
    "salesforce": "PRIVASYNC_SALESFORCE__INSTANCE_URL",
    "mailchimp": "PRIVASYNC_MAILCHIMP__BASE_URL (or the key's data centre)",
}


@dataclass(frozen=True)
class Checked:
    system: str
    ok: bool | None  # None: not configured, nothing tried
    detail: str

    def line(self) -> str:
        mark = {True: "OK  ", False: "FAIL", None: "-   "}[self.ok]
        return f"{mark} {self.system}: {self.detail}"


def _fix(system: str, exc: DeliveryError) -> str:
    if exc.error_class in FIXES:
        return FIXES[exc.error_class]
    if system.startswith("partner:"):
        name = system.removeprefix("partner:")
        return (f"check that the partner listens at its URL (url_setting or url of {name} in "
                "partners.yaml)")
    if isinstance(exc, AuthError):
        return f"check {CREDENTIALS.get(system, 'its credentials')}"
    if isinstance(exc, TransientError):
        return f"check {ADDRESS.get(system, 'its address')} and the network, then try again"
    return "see the message above"


def _try(system: str, make: Callable[[], Any], ok: str) -> Checked:
    try:
        make().check()
    except ConfigError as exc:
        return Checked(system, False, str(exc).splitlines()[0])
    except DeliveryError as exc:
        said = str(exc).removeprefix(f"{system} ").removeprefix(
            f"{system.removeprefix('partner:')} ")
        return Checked(system, False, f"{said}; {_fix(system, exc)}")
    return Checked(system, True, ok)


def check_systems(settings: Settings, mappings: Mappings,
                  environ: Mapping[str, str]) -> list[Checked]:
    """One result per system privasync knows and per partner, configured or not."""
    from privasync.app.bootstrap import connector_builders
    from privasync.app.keyfiles import keyring

    builders = connector_builders(settings, mappings, environ, keyring=keyring(settings))
    enabled = configured(settings)
    results: list[Checked] = []
    for system in ENABLED_BY:
        if system not in enabled:
            results.append(Checked(system, None, f"not configured (set {ENABLED_BY[system]})"))
        elif system == "hubspot" and settings.hubspot.access_token is None:
            results.append(Checked(system, None, "webhooks only (no access token, so not a "
                                                 "destination): nothing to try"))
        else:
            results.append(_try(system, builders[system], _where(settings, system)))
    for name in sorted(n for n in builders if n.startswith("partner:")):
        results.append(_try(name, builders[name], "reachable"))
    return results


def _where(settings: Settings, system: str) -> str:
    if system == "hubspot":
        return f"token accepted, scopes sufficient, at {mask_url(settings.hubspot.base_url)}"
    if system == "salesforce":
        return (f"session accepted, API {settings.salesforce.api_version} served, at "
                f"{mask_url(settings.salesforce.instance_url)}")
    return f"key accepted, audience {settings.mailchimp.list_id} found"
