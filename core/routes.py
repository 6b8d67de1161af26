"""Which destination hears about what: consent per purpose, record fields per field."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from core.mappings import Mappings


@dataclass(frozen=True)
class Routes:
    """Which destination cares about which purposes' consent, and which fields it holds."""

    purposes: dict[str, frozenset[str]]
    fields: dict[str, frozenset[str]] = field(default_factory=dict)
    erasure: frozenset[str] = frozenset()  # destinations that erase a person
    exports: frozenset[str] = frozenset()  # systems that tell what they hold
    notifier: bool = False                 # whether the person can be told

    @classmethod
    def from_mappings(cls, mappings: Mappings, systems: Iterable[str], *,
                      erasure: Iterable[str] = (), exports: Iterable[str] = (),
                      notifier: bool = False,
                      partners: Iterable[str] | None = None) -> Routes:
        """``systems``: vendor destinations; ``partners``: the partner names that take
        consent and record updates (default: every partner in the mappings)."""
        routes: dict[str, frozenset[str]] = {}
        fields: dict[str, frozenset[str]] = {}
        for name in systems:
            system = mappings.system(name)
            routes[name] = frozenset(system.consent.all_email) | frozenset(
                s.purpose for s in system.consent.subscriptions.values())
            fields[name] = frozenset(f.canonical for f in system.fields.values())
        taking = set(mappings.partners if partners is None else partners)
        for name, partner in mappings.partners.items():
            if name not in taking:
                continue
            routes[f"partner:{name}"] = frozenset(partner.purposes)
            fields[f"partner:{name}"] = frozenset(
                c for c, f in mappings.fields.items() if set(f.purposes) & set(partner.purposes))
        return cls(routes, fields, frozenset(erasure), frozenset(exports), notifier)

    def targets(self, purposes: Iterable[str], source: str | None) -> list[str]:
        wanted = set(purposes)
        return [d for d, ps in self.purposes.items() if d != source and ps & wanted]

    def record_targets(self, names: Iterable[str], source: str) -> list[str]:
        """Destinations other than the source that hold or may receive any of these fields;
        whether each field may really go is decided at delivery (minimise)."""
        wanted = set(names)
        return [d for d, fs in self.fields.items() if d != source and fs & wanted]
