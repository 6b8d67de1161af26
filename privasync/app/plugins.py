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

PLUGINS: tuple[Plugin[Any], ...] = (HUBSPOT, SALESFORCE, MAILCHIMP, PARTNERS)


def systems() -> tuple[Plugin[Any], ...]:
    """The vendor systems (each configured by its own settings), in the order they report."""
    return tuple(p for p in PLUGINS if p.system)
