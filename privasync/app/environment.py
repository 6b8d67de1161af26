"""Where each setting came from, which ``PRIVASYNC_`` names nobody reads, and partner
secrets from the same places as settings.

A typo in a variable name would otherwise leave a setting at its default without a
word (``PRIVASYNC_DATABSE_URL`` and the service quietly uses SQLite): every name
with the prefix in the environment, ``.env`` or the secrets directory must be a
setting, a partner's variable named in ``partners.yaml``, or belong to the test
suite or the benchmark (``PRIVASYNC_TEST_*``, ``PRIVASYNC_BENCH_*``).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel

from privasync.app.settings import ENV_PREFIX, Settings, dotenv, file_sources, secrets_dir

NOT_SETTINGS = (ENV_PREFIX + "TEST_", ENV_PREFIX + "BENCH_")
MASK = "********"
PARTNER_KEYS = ("secret_setting", "url_setting", "certificate_setting")
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^/\s]*@")


def mask_url(url: str) -> str:
    """The URL with any password replaced (``user:***@host``), whatever its scheme and
    even when it does not parse."""
    return _URL_PASSWORD.sub(r"\1***@", url)


def setting_names(model: type[BaseModel] = Settings, prefix: str = ENV_PREFIX,
                  path: tuple[str, ...] = ()) -> dict[str, tuple[str, ...]]:
    """Every variable name a setting reads (upper case) -> its path in Settings."""
    found: dict[str, tuple[str, ...]] = {}
    for name, info in model.model_fields.items():
        key = (info.alias or name).upper()
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found[prefix + key] = (*path, name)  # the whole group as JSON
            found |= setting_names(annotation, f"{prefix}{key}__", (*path, name))
        else:
            found[prefix + key] = (*path, name)
    return found


def _keyed_model(annotation: Any) -> type[BaseModel] | None:
    """The model of a ``dict[str, Model]`` setting (one group per key), else None."""
    args = get_args(annotation)
    if get_origin(annotation) is dict and len(args) == 2 and isinstance(args[1], type) \
            and issubclass(args[1], BaseModel):
        return args[1]
    return None


def keyed_settings() -> dict[str, tuple[str, type[BaseModel]]]:
    """``PRIVASYNC_RETRY__`` -> (``retry``, RetrySettings): settings whose middle part is a
    key the operator chooses (``PRIVASYNC_RETRY__HUBSPOT__MAX_ATTEMPTS``)."""
    return {f"{ENV_PREFIX}{name.upper()}__": (name, model)
            for name, info in Settings.model_fields.items()
            if (model := _keyed_model(info.annotation)) is not None}


def _keyed_known(upper: str) -> tuple[bool, list[str]]:
    """Whether ``upper`` is a keyed setting's name, and the names it could have meant."""
    for prefix, (_, model) in keyed_settings().items():
        if upper.startswith(prefix):
            key, _, field = upper.removeprefix(prefix).rpartition("__")
            fields = [f.upper() for f in model.model_fields]
            return bool(key) and field in fields, [f"{prefix}{key or '<KEY>'}__{f}"
                                                   for f in fields]
    return False, []


def partner_variables(mappings_dir: Path) -> dict[str, str] | None:
    """The variables ``partners.yaml`` names -> what each holds (``secret_setting``,
    ``url_setting``, ``certificate_setting``); None if the file cannot be read (the
    mappings' own check says why)."""
    try:
        loaded = yaml.safe_load((mappings_dir / "partners.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return None
    partners = loaded.get("partners") if isinstance(loaded, dict) else None
    names: dict[str, str] = {}
    for partner in (partners if isinstance(partners, dict) else {}).values():
        if isinstance(partner, dict):
            names |= {str(partner[k]): k for k in PARTNER_KEYS if partner.get(k)}
    return names


def _given_names() -> Iterator[tuple[str, str]]:
    """(name, where) for every ``PRIVASYNC_`` name given in each source."""
    for name in os.environ:
        yield name, "environment"
    for name in dotenv():
        yield name, ".env"
    directory = secrets_dir()
    if directory.is_dir():
        for path in directory.iterdir():
            if path.is_file() and not path.name.startswith("."):
                yield path.name, f"secrets file in {directory}"


def unknown_variables(mappings_dir: Path) -> list[str]:
    """One phrase per ``PRIVASYNC_`` name no setting or partner reads, with the closest
    setting. When ``partners.yaml`` cannot be read, names that could be a partner's
    (``PRIVASYNC_PARTNER_*``) are given the benefit of the doubt."""
    known = set(setting_names())
    partners = partner_variables(mappings_dir)
    candidates = sorted(known | set(partners or {}))
    problems: list[str] = []
    for name, where in _given_names():
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper in known or upper.startswith(NOT_SETTINGS):
            continue
        keyed, meant = _keyed_known(upper)
        if keyed:
            continue
        if name in (partners or {}) or (partners is None
                                        and upper.startswith(ENV_PREFIX + "PARTNER_")):
            continue
        close = difflib.get_close_matches(upper, [*candidates, *meant], n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        problems.append(f"{name} in the {where}{hint}")
    return problems


class LayeredEnviron(Mapping[str, str]):
    """Variables named in ``partners.yaml`` from where settings come from, strongest
    first: the environment, ``.env``, then a file of that exact name in the secrets
    directory (``/run/secrets/PRIVASYNC_PARTNER_CONTACT_CENTRE_SECRET``)."""

    def __init__(self) -> None:
        self._dotenv = dotenv()
        self._dir = secrets_dir()

    def __getitem__(self, name: str) -> str:
        if name in os.environ:
            return os.environ[name]
        if name in self._dotenv:
            return self._dotenv[name]
        path = self._dir / name
        if name and "/" not in name and path.is_file():
            return path.read_text(encoding="utf-8").strip()
        raise KeyError(name)

    def origin(self, name: str) -> str | None:
        if name in os.environ:
            return "env"
        if name in self._dotenv:
            return ".env"
        return "secrets file" if name and (self._dir / name).is_file() else None

    def __iter__(self) -> Iterator[str]:
        yield from dict.fromkeys([*os.environ, *self._dotenv])

    def __len__(self) -> int:
        return len(set(os.environ) | set(self._dotenv))


@dataclass(frozen=True)
class Shown:
    """One line of ``privasync config show``."""

    variable: str
    value: str
    origin: str
    secret: bool


def _origins() -> dict[str, str]:
    """Variable name (upper case) -> the strongest source that gives it."""
    found: dict[str, str] = {}
    for origin, source in reversed(file_sources()):  # the strongest last, so it wins
        for path in _leaves(source()):
            found[ENV_PREFIX + "__".join(path).upper()] = origin
    return found


def _leaves(values: Mapping[str, Any], path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for key, value in values.items():
        if isinstance(value, Mapping):
            yield from _leaves(value, (*path, key))
        else:
            yield (*path, key)


def _is_secret(path: tuple[str, ...]) -> bool:
    model: Any = Settings
    for part in path[:-1]:
        model = model.model_fields[part].annotation
    return "SecretStr" in repr(model.model_fields[path[-1]].annotation)


def _display(value: Any, secret: bool) -> str:
    if value is None:
        return "(not set)"
    if secret:
        return MASK
    text = str(value)
    return mask_url(text) if "://" in text else text


def show(settings: Settings, mappings_dir: Path) -> list[Shown]:
    """Every effective setting (secrets masked, passwords in URLs too) and its origin,
    then each variable ``partners.yaml`` names."""
    origins = _origins()
    rows: list[Shown] = []
    for variable, path in setting_names().items():
        value: Any = settings
        for part in path:
            value = getattr(value, part)
        if isinstance(value, BaseModel):
            continue
        if isinstance(value, dict):  # keyed groups: one line per key and field given
            for key, group in sorted(value.items()):
                for field, given in group.model_dump().items():
                    name = f"{variable}__{key.upper()}__{field.upper()}"
                    if given is not None:
                        rows.append(Shown(name, str(given), origins.get(name, "default"),
                                          False))
            continue
        secret = _is_secret(path)
        rows.append(Shown(variable, _display(value, secret), origins.get(variable, "default"),
                          secret))
    environ = LayeredEnviron()
    for variable, kind in sorted((partner_variables(mappings_dir) or {}).items()):
        given = environ.get(variable)
        secret = kind == "secret_setting"
        if kind == "certificate_setting" and given and given.lstrip().startswith("-----BEGIN"):
            given = "(a PEM certificate)"
        rows.append(Shown(variable, _display(given, secret), environ.origin(variable)
                          or "default", secret))
    return rows
