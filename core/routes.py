"""Which destination hears about what: consent per purpose, record fields per field; and
what a data-subject request cannot reach here."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from core.mappings import Mappings

# How long a requester has to prove who they are once asked (Art. 12(6)) when nothing else
# is configured: the month the controller itself has to answer (Art. 12(3)), long enough
# for a letter and its answer by post.
IDENTITY_WAIT = timedelta(days=30)


@dataclass(frozen=True)
class Routes:
    """Which destination cares about which purposes' consent, and which fields it holds."""

    purposes: dict[str, frozenset[str]]
    fields: dict[str, frozenset[str]] = field(default_factory=dict)
    erasure: frozenset[str] = frozenset()  # destinations that erase a person
    exports: frozenset[str] = frozenset()  # systems that tell what they hold
    notifier: bool = False                 # whether the person can be told
    # Systems privasync knows (its vendor connectors, the partners in the mappings) with no
    # connection configured here: a request cannot reach them, and says so.
    not_configured: frozenset[str] = frozenset()
    identity_wait: timedelta = IDENTITY_WAIT  # asked for identity: the answer is due within

    @classmethod
    def from_mappings(cls, mappings: Mappings, systems: Iterable[str], *,
                      erasure: Iterable[str] = (), exports: Iterable[str] = (),
                      notifier: bool = False,
                      partners: Iterable[str] | None = None,
                      not_configured: Iterable[str] = (),
                      identity_wait: timedelta = IDENTITY_WAIT) -> Routes:
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
        return cls(routes, fields, frozenset(erasure), frozenset(exports), notifier,
                   frozenset(not_configured), identity_wait)

    def targets(self, purposes: Iterable[str], source: str | None) -> list[str]:
        wanted = set(purposes)
        return [d for d, ps in self.purposes.items() if d != source and ps & wanted]

    def record_targets(self, names: Iterable[str], source: str) -> list[str]:
        """Destinations other than the source that hold or may receive any of these fields;
        whether each field may really go is decided at delivery (minimise)."""
        wanted = set(names)
        return [d for d, fs in self.fields.items() if d != source and fs & wanted]
