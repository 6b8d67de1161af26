"""``privasync check``: try each configured system with the credentials given, and say in
one line per system whether it works or what to change.

Each system is built and checked on its own, so one missing secret does not hide
what is wrong with the others. Messages name settings and error classes, never a
secret or a personal value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from connectors.plugin import Connection
from core.errors import AuthError, ConfigError, DeliveryError, TransientError
from core.mappings import Mappings
from privasync.app.environment import mask_url
from privasync.app.mapping_warnings import configured
from privasync.app.plugins import PLUGINS, systems
from privasync.app.settings import Settings

# What to change, by the error class a connector's check raised (each plug-in's own).
FIXES = {error: fix for p in PLUGINS for error, fix in p.check.fixes.items()}
CREDENTIALS = {p.name: p.check.credentials for p in systems()}
ADDRESS = {p.name: p.check.address for p in systems()}


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


def _try(system: str, make: Callable[[], Connection], ok: str) -> Checked:
    try:
        make().connector.check()
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
    for plugin in systems():
        system, section = plugin.name, plugin.section(settings)
        if system not in enabled:
            results.append(Checked(system, None, f"not configured (set {plugin.enabled_by})"))
        elif not plugin.delivers(section):
            results.append(Checked(system, None, plugin.check.idle))
        else:
            results.append(_try(system, builders[system],
                                plugin.check.ok(section, mask_url)))
    own = {p.name for p in systems()}
    for name in sorted(n for n in builders if n not in own):  # partners, one by one
        results.append(_try(name, builders[name], "reachable"))
    return results
