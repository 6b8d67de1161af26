"""The one registry of connector packages. A new connector is one more entry here: its
package declares its settings, how it connects and the routes it receives on
(``connectors/plugin.py``), and the app, the web face and the command line take it from
this list."""

from __future__ import annotations

from typing import Any

from connectors.hubspot.plugin import PLUGIN as HUBSPOT
from connectors.mailchimp.plugin import PLUGIN as MAILCHIMP
from connectors.partner.plugin import PLUGIN as PARTNERS
from connectors.plugin import Plugin
from connectors.salesforce.plugin import PLUGIN as SALESFORCE
from core.mappings import Mappings

PLUGINS: tuple[Plugin[Any], ...] = (HUBSPOT, SALESFORCE, MAILCHIMP, PARTNERS)


def systems() -> tuple[Plugin[Any], ...]:
    """The vendor systems (each configured by its own settings), in the order they report."""
    return tuple(p for p in PLUGINS if p.system)


def smoke_order(first: tuple[str, ...]) -> tuple[str, ...]:
    """The systems ``privasync smoke`` can drive: ``first`` in its order, then the others."""
    own = [p.name for p in systems() if p.smoke is not None]
    return (*(n for n in first if n in own), *(n for n in own if n not in first))


def smoke_ready(settings: object) -> set[str]:
    """The systems the smoke can drive with these settings (configured as destinations)."""
    return {p.name for p in systems() if p.smoke is not None
            and p.enabled(p.section(settings)) and p.delivers(p.section(settings))}


def smoke_client(settings: object, mappings: Mappings, name: str) -> Any:
    """The smoke's own client for ``name`` (``connectors/<vendor>/smoke.py``)."""
    plugin = next(p for p in systems() if p.name == name)
    assert plugin.smoke is not None
    return plugin.smoke(plugin.section(settings), mappings)
