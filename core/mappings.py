"""The admin's policy in ``mappings/``: purposes, per-system consent switches, partners.

Loaded once at start-up and by ``privasync mappings validate``. Every error
names the file, the line and what is wrong, so a person can fix it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Purpose(_Strict):
    description: str = ""
    legal_basis: LegalBasis
    consent_required: bool
    channels: tuple[Channel, ...] = ()
    retention_days: int | None = Field(default=None, gt=0)
    reconfirm_days: int | None = Field(default=None, gt=0)


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
    consent: SystemConsent = SystemConsent()


class Partner(_Strict):
    """A processor or recipient (Art. 28) that receives signed consent updates."""

    description: str = ""
    url: str
    url_setting: str | None = None
    secret_setting: str
    purposes: tuple[str, ...]
    agreement: str = Field(min_length=1)
    identifiers: tuple[str, ...] = ()

    @field_validator("identifiers")
    @classmethod
    def _known_identifiers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - {"email"})
        if unknown:
            raise ValueError(f"unknown identifier(s) {unknown}; allowed: ['email']")
        return value


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

    def system(self, name: str) -> SystemMapping:
        return self.systems.get(name, SystemMapping(system=name))

    def marketing_purposes(self, channel: Channel = Channel.EMAIL) -> tuple[str, ...]:
        return tuple(k for k, p in self.purposes.items() if channel in p.channels)


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


def load_mappings(directory: Path) -> Mappings:
    """Load and cross-check every mapping file. Raises MappingError listing all issues."""
    if not directory.is_dir():
        raise MappingError([MappingIssue(str(directory), 1, "mappings directory does not exist")])
    issues: list[MappingIssue] = []
    purposes_path = directory / "purposes.yaml"
    if not purposes_path.exists():
        raise MappingError([MappingIssue("purposes.yaml", 1, "file is missing")])
    purposes, names = _load_purposes(purposes_path, issues)

    systems: dict[str, SystemMapping] = {}
    for path in _system_files(directory):
        mapping, node = _validate(SystemMapping, path, issues)
        if mapping is None:
            continue
        if mapping.system in systems:
            issues.append(MappingIssue(path.name, _line_of(node, ["system"]),
                                       f"system {mapping.system!r} is mapped twice"))
        systems[mapping.system] = mapping
        _check_refs(names, mapping.consent.all_email, path.name, node,
                    ["consent", "all_email"], issues)
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
    return Mappings(purposes=purposes, systems=systems, partners=partners)
