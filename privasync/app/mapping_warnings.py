"""What ``privasync mappings validate`` warns about: mapping files that are valid but do
nothing here, so an admin is not surprised by a system that never syncs."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import yaml

from core.mappings import Mappings, PartnerProtocol
from privasync.app.plugins import systems
from privasync.app.settings import Settings

ENABLED_BY = {p.name: p.enabled_by for p in systems()}


def configured(settings: Settings) -> set[str]:
    """The systems these settings enable (as the composition root decides)."""
    return {p.name for p in systems() if p.enabled(p.section(settings))}


def warnings(directory: Path, mappings: Mappings, settings: Settings,
             environ: Mapping[str, str]) -> Iterator[str]:
    for path in sorted(directory.glob("*.yaml")):
        if path.name in {"purposes.yaml", "partners.yaml"}:
            continue
        try:
            empty = yaml.safe_load(path.read_text()) is None
        except (OSError, yaml.YAMLError):
            continue  # the loader has said what is wrong
        if empty:
            yield f"{path.name} is empty: it maps no system"
    enabled = configured(settings)
    for name, system in sorted(mappings.systems.items()):
        if not system.fields and not system.purposes:
            yield f"{name}: maps no purposes and no fields"
        if name not in ENABLED_BY:
            yield (f"{name}: privasync has no connector for this system (known: "
                   f"{', '.join(ENABLED_BY)}); its mapping is not used")
        elif name not in enabled:
            yield (f"{name} is mapped but not configured (set {ENABLED_BY[name]}); "
                   "until then nothing syncs with it")
    for name, partner in sorted(mappings.partners.items()):
        needed = (partner.certificate_setting if partner.protocol is PartnerProtocol.OPENDSR
                  else partner.secret_setting)
        if needed and not environ.get(needed):
            yield (f"partner {name}: {needed} is not set, so serve will not start; set it, or "
                   "remove the partner from partners.yaml")
