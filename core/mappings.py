"""The admin's policy in ``mappings/``: purposes, per-system consent switches, partners.

Loaded once at start-up and by ``privasync mappings validate``. Every error
names the file, the line and what is wrong, so a person can fix it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from core.errors import ConfigError
from core.model import Channel

_NAME = r"^[a-z][a-z0-9_]*$"


class LegalBasis(StrEnum):
    """Art. 6(1) grounds."""

    CONSENT = "consent"
    CONTRACT = "contract"
    LEGITIMATE_INTEREST = "legitimate_interest"
    LEGAL_OBLIGATION = "legal_obligation"
    VITAL_INTEREST = "vital_interest"
    PUBLIC_TASK = "public_task"


class Art9Ground(StrEnum):
    """Art. 9(2) grounds for processing special categories."""

    EXPLICIT_CONSENT = "explicit_consent"              # (a)
    EMPLOYMENT_SOCIAL_SECURITY = "employment_social_security"  # (b)
    VITAL_INTERESTS = "vital_interests"                # (c)
    NOT_FOR_PROFIT_BODY = "not_for_profit_body"        # (d)
    MADE_PUBLIC = "made_public"                        # (e)
    LEGAL_CLAIMS = "legal_claims"                      # (f)
    SUBSTANTIAL_PUBLIC_INTEREST = "substantial_public_interest"  # (g)
    HEALTH_CARE = "health_care"                        # (h)
    PUBLIC_HEALTH = "public_health"                    # (i)
    ARCHIVING_RESEARCH = "archiving_research"          # (j)


# Art. 9(1) (and Art. 10, criminal history) as fideslang data categories: a field
# in one of these is a special category whatever its mapping says.
SPECIAL_CATEGORY_PREFIXES = (
    "user.biometric", "user.authorization.biometric", "user.health_and_medical",
    "user.demographic.race_ethnicity", "user.demographic.religious_belief",
    "user.demographic.political_opinion", "user.demographic.sexual_orientation",
    "user.criminal_history",
)


def is_special_category(category: str) -> bool:
    return any(category == p or category.startswith(p + ".") for p in SPECIAL_CATEGORY_PREFIXES)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Purpose(_Strict):
    description: str = ""
    legal_basis: LegalBasis
    consent_required: bool
    channels: tuple[Channel, ...] = ()
    retention_days: int | None = Field(default=None, gt=0)
    reconfirm_days: int | None = Field(default=None, gt=0)
    soft_opt_in: bool = False
    art9_ground: Art9Ground | None = None
    # Direct marketing: an objection (Art. 21(3)) withdraws it on every channel, absolutely.
    direct_marketing: bool = False


class FieldMapping(_Strict):
    """One vendor field: what it is (fideslang category) and what it is for."""

    canonical: str = Field(pattern=_NAME)
    category: str
    purposes: tuple[str, ...] = Field(min_length=1)
    special_category: bool = False
    retention_days: int | None = Field(default=None, gt=0)

    @property
    def special(self) -> bool:
        return self.special_category or is_special_category(self.category)


class Subscription(_Strict):
    purpose: str
    channel: Channel = Channel.EMAIL


class SystemConsent(_Strict):
    """How a system's consent switches map onto purposes.

    ``all_email``: the purposes its global e-mail opt-out covers (HubSpot's
    unsubscribe-from-all, Salesforce's email opt-out, a Mailchimp list).
    ``subscriptions``: finer switches by the vendor's id.
    """

    all_email: tuple[str, ...] = ()
    subscriptions: dict[str, Subscription] = Field(default_factory=dict)


class SystemMapping(_Strict):
    system: str = Field(pattern=_NAME)
    description: str = ""
    purposes: tuple[str, ...] = ()
    consent: SystemConsent = SystemConsent()
    fields: dict[str, FieldMapping] = Field(default_factory=dict)

    def vendor_field(self, canonical: str) -> str | None:
        """The vendor's name for a canonical field in this system, if it holds it."""
        return next((v for v, f in self.fields.items() if f.canonical == canonical), None)


class PartnerProtocol(StrEnum):
    """How a partner is told things: our own signed JSON, or the OpenDSR protocol."""

    PRIVASYNC = "privasync"
    OPENDSR = "opendsr"


_DURATION = re.compile(r"^([1-9][0-9]{0,5})([smhd])$")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``72h``, ``3d`` as a timedelta; ValueError (naming the rule)
    otherwise."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError("expected a whole number of seconds, minutes, hours or days, "
                         "e.g. 90s, 30m, 72h, 3d")
    return timedelta(**{_DURATION_UNITS[match.group(2)]: int(match.group(1))})


class Partner(_Strict):
    """A processor or recipient (Art. 28) that receives signed updates and erasure requests.

    ``protocol: privasync`` partners get our HMAC-signed JSON at ``url`` and sign their
    acknowledgements with the secret named by ``secret_setting``. ``protocol: opendsr``
    processors take erasure requests at the API base ``url``; their callbacks are checked
    against the certificate pinned in ``certificate_setting``, and must name our
    ``controller_id``. Either must acknowledge an erasure within ``ack_within``.
    """

    description: str = ""
    url: str
    url_setting: str | None = None
    secret_setting: str = ""
    purposes: tuple[str, ...]
    agreement: str = Field(min_length=1)
    identifiers: tuple[str, ...] = ()
    protocol: PartnerProtocol = PartnerProtocol.PRIVASYNC
    ack_within: str = "72h"
    certificate_setting: str | None = None
    controller_id: str | None = Field(default=None, min_length=1)

    @field_validator("identifiers")
    @classmethod
    def _known_identifiers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - {"email"})
        if unknown:
            raise ValueError(f"unknown identifier(s) {unknown}; allowed: ['email']")
        return value

    @field_validator("ack_within")
    @classmethod
    def _a_duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @model_validator(mode="after")
    def _protocol_settings(self) -> Partner:
        """Each protocol's own settings present, the other's absent: a half-configured
        partner would fail only on its first erasure, weeks later."""
        if self.protocol is PartnerProtocol.PRIVASYNC:
            if not self.secret_setting:
                raise ValueError("protocol privasync needs secret_setting (the variable "
                                 "holding the signing secret)")
            stray = [k for k in ("certificate_setting", "controller_id") if getattr(self, k)]
            if stray:
                raise ValueError(f"{', '.join(stray)} apply only to protocol opendsr")
        else:
            missing = [k for k in ("certificate_setting", "controller_id") if not getattr(self, k)]
            if missing:
                raise ValueError(f"protocol opendsr needs {' and '.join(missing)}")
        return self

    @property
    def ack_window(self) -> timedelta:
        """How long the partner has to acknowledge an erasure request."""
        return parse_duration(self.ack_within)


class _PartnersFile(_Strict):
    partners: dict[str, Partner] = Field(default_factory=dict)


@dataclass(frozen=True)
class MappingIssue:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class MappingError(ConfigError):
    """Mapping files are invalid; ``issues`` lists each problem with file and line."""

    def __init__(self, issues: Sequence[MappingIssue]) -> None:
        self.issues = tuple(issues)
        super().__init__("invalid mappings:\n" + "\n".join(f"  {i}" for i in self.issues))


@dataclass(frozen=True)
class Mappings:
    purposes: dict[str, Purpose]
    systems: dict[str, SystemMapping]
    partners: dict[str, Partner]
    fields: dict[str, FieldMapping] = dataclass_field(default_factory=dict)

    def system(self, name: str) -> SystemMapping:
        return self.systems.get(name, SystemMapping(system=name))

    def destination_purposes(self, destination: str) -> frozenset[str]:
        """What a destination (``hubspot``, ``partner:acme``) uses personal data for."""
        if destination.startswith("partner:"):
            partner = self.partners.get(destination.removeprefix("partner:"))
            return frozenset(partner.purposes) if partner else frozenset()
        return frozenset(self.system(destination).purposes)


def _line_of(node: yaml.Node | None, loc: Sequence[int | str]) -> int:
    """Walk a composed YAML node along a pydantic error location; 1-based line."""
    best = node
    for part in loc:
        if isinstance(best, yaml.MappingNode):
            nxt = next((v for k, v in best.value if k.value == str(part)), None)
        elif isinstance(best, yaml.SequenceNode) and isinstance(part, int):
            nxt = best.value[part] if part < len(best.value) else None
        else:
            nxt = None
        if nxt is None:
            break
        best = nxt
    return (best.start_mark.line + 1) if best is not None else 1


def _read(path: Path, issues: list[MappingIssue]) -> tuple[Any, yaml.Node | None]:
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or "parse error"
        issues.append(MappingIssue(path.name, line, f"not valid YAML: {problem}"))
        return None, None
    _duplicate_keys(node, path.name, issues)
    return data, node


def _validate(model: type[_Strict], path: Path, issues: list[MappingIssue]) -> tuple[Any, Any]:
    data, node = _read(path, issues)
    if data is None and node is None:
        return None, None
    try:
        return model.model_validate(data), node
    except ValidationError as exc:
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            issues.append(MappingIssue(path.name, _line_of(node, err["loc"]),
                                       f"{where}: {err['msg']}"))
        return None, node


def _load_purposes(path: Path, issues: list[MappingIssue]) -> tuple[dict[str, Purpose],
                                                                      frozenset[str]]:
    """Each purpose on its own, so one broken entry does not hide the others' names."""
    data, node = _read(path, issues)
    if not isinstance(data, dict) or not isinstance(data.get("purposes"), dict):
        if data is not None or node is not None:
            issues.append(MappingIssue(path.name, 1, "expected a top-level 'purposes:' mapping"))
        return {}, frozenset()
    for extra in sorted(set(data) - {"purposes"}):
        issues.append(MappingIssue(path.name, _line_of(node, [extra]),
                                   f"{extra}: unknown key (expected only 'purposes')"))
    valid: dict[str, Purpose] = {}
    for name, raw in data["purposes"].items():
        try:
            valid[str(name)] = Purpose.model_validate(raw)
        except ValidationError as exc:
            for err in exc.errors():
                loc = ["purposes", name, *err["loc"]]
                issues.append(MappingIssue(path.name, _line_of(node, loc),
                                           f"{'.'.join(map(str, loc))}: {err['msg']}"))
    return valid, frozenset(map(str, data["purposes"]))


def _check_refs(purposes: Collection[str], names: Sequence[str], file: str,
                node: yaml.Node | None, loc: Sequence[int | str],
                issues: list[MappingIssue]) -> None:
    for i, name in enumerate(names):
        if name not in purposes:
            known = ", ".join(sorted(purposes)) or "none"
            issues.append(MappingIssue(file, _line_of(node, [*loc, i]),
                                       f"purpose {name!r} does not exist (known: {known})"))


def _system_files(directory: Path) -> Iterator[Path]:
    for path in sorted(directory.glob("*.yaml")):
        if path.name not in {"purposes.yaml", "partners.yaml"}:
            yield path


def _check_fields(mapping: SystemMapping, file: str, node: yaml.Node | None,
                  names: frozenset[str], purposes: dict[str, Purpose],
                  categories: Collection[str],
                  seen: dict[str, tuple[FieldMapping, str]],
                  issues: list[MappingIssue]) -> None:
    """Taxonomy keys, purposes, double mappings, Art. 9 grounds, one meaning per field."""
    canonical_here: dict[str, str] = {}
    for vendor, fm in mapping.fields.items():
        at = ["fields", vendor]
        if fm.category not in categories:
            close = difflib.get_close_matches(fm.category, list(categories), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            issues.append(MappingIssue(file, _line_of(node, [*at, "category"]),
                                       f"field {vendor}: unknown data category "
                                       f"{fm.category!r} (not in the fideslang taxonomy){hint}"))
        _check_refs(names, fm.purposes, file, node, [*at, "purposes"], issues)
        if fm.canonical in canonical_here:
            issues.append(MappingIssue(file, _line_of(node, at),
                                       f"field {fm.canonical!r} is mapped twice (by "
                                       f"{canonical_here[fm.canonical]} and {vendor})"))
        canonical_here[fm.canonical] = vendor
        if fm.special:
            for p in fm.purposes:
                if p in purposes and purposes[p].art9_ground is None:
                    issues.append(MappingIssue(
                        file, _line_of(node, [*at, "purposes"]),
                        f"field {vendor} is a special category (Art. 9) routed to purpose "
                        f"{p!r}, which has no art9_ground in purposes.yaml"))
        earlier = seen.get(fm.canonical)
        if earlier is None:
            seen[fm.canonical] = (fm, file)
        elif (earlier[0].category, set(earlier[0].purposes), earlier[0].special) != (
                fm.category, set(fm.purposes), fm.special):
            issues.append(MappingIssue(file, _line_of(node, at),
                                       f"field {fm.canonical!r} has another category, purposes "
                                       f"or sensitivity than in {earlier[1]}"))


def _duplicate_keys(node: yaml.Node | None, file: str, issues: list[MappingIssue]) -> None:
    """PyYAML keeps the last of two equal keys silently; an admin must hear of it."""
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key, value in node.value:
            line = key.start_mark.line + 1
            if key.value in first:
                issues.append(MappingIssue(file, line, f"key {key.value!r} appears twice "
                                                       f"(first on line {first[key.value]})"))
            first.setdefault(key.value, line)
            _duplicate_keys(value, file, issues)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _duplicate_keys(item, file, issues)


def load_mappings(directory: Path, categories: Collection[str]) -> Mappings:
    """Load and cross-check every mapping file against the data-category taxonomy.

    Raises MappingError listing every issue with its file and line.
    """
    if not directory.is_dir():
        raise MappingError([MappingIssue(str(directory), 1, "mappings directory does not exist")])
    issues: list[MappingIssue] = []
    purposes_path = directory / "purposes.yaml"
    if not purposes_path.exists():
        raise MappingError([MappingIssue("purposes.yaml", 1, "file is missing")])
    purposes, names = _load_purposes(purposes_path, issues)
    fields: dict[str, tuple[FieldMapping, str]] = {}

    systems: dict[str, SystemMapping] = {}
    for path in _system_files(directory):
        mapping, node = _validate(SystemMapping, path, issues)
        if mapping is None:
            continue
        if mapping.system in systems:
            issues.append(MappingIssue(path.name, _line_of(node, ["system"]),
                                       f"system {mapping.system!r} is mapped twice"))
        systems[mapping.system] = mapping
        _check_refs(names, mapping.purposes, path.name, node, ["purposes"], issues)
        _check_refs(names, mapping.consent.all_email, path.name, node,
                    ["consent", "all_email"], issues)
        _check_fields(mapping, path.name, node, names, purposes, categories, fields, issues)
        for sub_id, sub in mapping.consent.subscriptions.items():
            _check_refs(names, [sub.purpose], path.name, node,
                        ["consent", "subscriptions", sub_id, "purpose"], issues)

    partners: dict[str, Partner] = {}
    partners_path = directory / "partners.yaml"
    if partners_path.exists():
        pf, node = _validate(_PartnersFile, partners_path, issues)
        if pf is not None:
            partners = dict(pf.partners)
            for name, partner in partners.items():
                _check_refs(names, partner.purposes, partners_path.name, node,
                            ["partners", name, "purposes"], issues)
    if issues:
        raise MappingError(issues)
    return Mappings(purposes=purposes, systems=systems, partners=partners,
                    fields={c: f for c, (f, _) in fields.items()})
