"""Every setting, read with the prefix ``PRIVASYNC_`` from, strongest first: the
environment, a ``.env`` file in the working directory, and files in the secrets
directory (``PRIVASYNC_SECRETS_DIR``, default ``/run/secrets``: Docker and
Kubernetes secrets), each file named like the variable and holding its value.

Nested settings use ``__``: ``PRIVASYNC_HUBSPOT__ACCESS_TOKEN``. Secrets are
``SecretStr`` so they never print. README.md has the table; keep it true. Each connector's
group (``hubspot``, ``salesforce``, ...) is its package's own model, composed in from the
registry (``privasync/app/plugins.py``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast

from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, Field, SecretStr, create_model
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources import NestedSecretsSettingsSource

from privasync.app.plugins import PLUGINS

ENV_PREFIX = "PRIVASYNC_"
ENV_FILE = ".env"
DEFAULT_SECRETS_DIR = Path("/run/secrets")


class SmtpSettings(BaseModel):
    """The relay that mails people their request notices; an empty host means no SMTP.

    ``from`` is a Python keyword, so the field is ``from_`` and reads the env
    variable ``PRIVASYNC_SMTP__FROM`` through its alias.
    """

    model_config = ConfigDict(populate_by_name=True)

    host: str = ""
    port: int = Field(default=587, ge=1, le=65535)
    from_: str = Field(default="", alias="from")
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = True
    timeout_seconds: float = Field(default=10.0, gt=0)
    ca_file: Path | None = None


class NotifyWebhookSettings(BaseModel):
    """Where an organisation that mails people itself receives signed request notices."""

    url: str = ""
    secret: SecretStr | None = None
    timeout_seconds: float = Field(default=10.0, gt=0)


class WorkerSettings(BaseModel):
    threads: int = Field(default=4, ge=1, le=64)
    max_attempts: int = Field(default=12, ge=1)
    max_age_seconds: float = Field(default=86400.0, gt=0)
    min_backoff_seconds: float = Field(default=2.0, gt=0)
    max_backoff_seconds: float = Field(default=3600.0, gt=0)
    heartbeat_seconds: float = Field(default=5.0, gt=0)
    lease_seconds: float = Field(default=30.0, gt=0)
    max_hold_seconds: float = Field(default=300.0, gt=0)
    dispatch_seconds: float = Field(default=1.0, gt=0)
    max_batch: int = Field(default=0, ge=0)
    prefetch: int = Field(default=0, ge=0, le=65535)
    # How long a stopping worker waits for the batches in hand (a pod's
    # terminationGracePeriodSeconds must be longer: deploy/k8s/worker.yaml).
    shutdown_seconds: float = Field(default=10.0, gt=0)


class RetrySettings(BaseModel):
    """One destination's retry budget and backoff (``PRIVASYNC_RETRY__HUBSPOT__MAX_ATTEMPTS``;
    a partner ``partner:NAME`` is ``PARTNER_NAME``); what is unset comes from
    ``PRIVASYNC_WORKER__*``."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int | None = Field(default=None, ge=1)
    max_age_seconds: float | None = Field(default=None, gt=0)
    min_backoff_seconds: float | None = Field(default=None, gt=0)
    max_backoff_seconds: float | None = Field(default=None, gt=0)


class ApplierSettings(BaseModel):
    poll_seconds: float = Field(default=0.2, gt=0)
    lease_seconds: float = Field(default=15.0, gt=0)
    max_events: int = Field(default=2000, ge=1)
    max_attempts: int = Field(default=5, ge=1)


class SchedulerSettings(BaseModel):
    lease_seconds: float = Field(default=15.0, gt=0)
    ledger_verify_seconds: float = Field(default=300.0, gt=0)


class SupervisorSettings(BaseModel):
    """``privasync serve`` on one machine: restarting its API or background process."""

    min_restart_seconds: float = Field(default=0.5, gt=0)
    max_restart_seconds: float = Field(default=30.0, gt=0)
    # After SIGTERM, how much longer than the worker's shutdown_seconds the processes have
    # to drain before they are killed.
    grace_seconds: float = Field(default=5.0, ge=0)


class _AppSettings(BaseSettings):
    """The app's own settings, before the connectors' groups."""


    # An empty variable counts as unset (the default applies), so a deployment can list
    # every setting (deploy/k8s/configmap.yaml) and leave the ones it does not use empty.
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__",
                                      extra="ignore", env_file=ENV_FILE,
                                      env_ignore_empty=True)

    database_url: str = "sqlite:///./var/privasync.db"
    broker_url: str = ""
    # Where every process shares the vendors' rate limits (Redis); empty: the broker's
    # URL when it is Redis, else this process's memory.
    rate_limit_url: str = ""
    broker_namespace: str = Field(default="privasync", pattern=r"^[A-Za-z0-9_.-]+$")
    broker_heartbeat_timeout_seconds: float = Field(default=15.0, gt=0)
    broker_maintenance_chance: float = Field(default=0.01, gt=0, le=1)
    broker_dead_message_ttl_seconds: float = Field(default=86400.0, gt=0)
    mappings_dir: Path = Path("mappings")
    public_url: str = ""
    secret_key: SecretStr | None = None
    kek: SecretStr | None = None
    kek_previous: SecretStr | None = None
    var_dir: Path = Path("var")
    # Completed erasures, kept outside the database for `privasync restore-check` (default:
    # var/erasure-log.jsonl); keep it out of the database's backups and restores.
    erasure_log: Path | None = None
    # How long database backups are kept: an old KEK generation is destroyed this long after
    # it was replaced, so no backup older than that can be read.
    backup_horizon_days: float = Field(default=35.0, gt=0)
    log_level: str = "INFO"
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    body_read_timeout_seconds: float = Field(default=10.0, gt=0)
    inbox_keep_days: float = Field(default=3.0, gt=0)
    # Done and superseded jobs (what they sent stays in ``disclosures``). At least a day: the
    # applier's check for people back after an erasure reads the last hour's jobs.
    jobs_keep_days: float = Field(default=7.0, ge=1)
    export_keep_days: float = Field(default=30.0, gt=0)
    identity_wait_days: float = Field(default=30.0, gt=0, le=366)
    requests_watch_seconds: float = Field(default=60.0, gt=0)
    organisation: str = Field(default="privasync", min_length=1, max_length=200)
    notify_language: Literal["en", "nl"] = "en"
    readyz_fail_on_dead_jobs: bool = False
    migrate_on_start: bool = True
    secrets_dir: Path = DEFAULT_SECRETS_DIR

    @classmethod
    def settings_customise_sources(
            cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the environment, ``.env``, and the secrets directory (nested names
        like the variables: ``PRIVASYNC_HUBSPOT__ACCESS_TOKEN``; a missing one is ignored)."""
        return (init_settings, env_settings, dotenv_settings,
                NestedSecretsSettingsSource(file_secret_settings,
                                            secrets_dir=secrets_dir(),
                                            secrets_dir_missing="ok"))


def _with_connectors(base: type[_AppSettings]) -> type[_AppSettings]:
    """``base`` and a group per connector package that has settings, named after it."""
    groups: dict[str, object] = {p.name: (p.settings, p.settings())
                                 for p in PLUGINS if p.settings is not None}
    made = create_model("ConnectorSettings", __base__=base, **groups)  # type: ignore[call-overload]
    return cast(type[_AppSettings], made)


if TYPE_CHECKING:
    _ConnectorSettings = _AppSettings
else:
    _ConnectorSettings = _with_connectors(_AppSettings)


class Settings(_ConnectorSettings):
    """Every setting: the app's, each connector's group (``settings.hubspot``: its
    package's model, read by its plug-in), then the workers'."""

    worker: WorkerSettings = WorkerSettings()
    applier: ApplierSettings = ApplierSettings()
    retry: dict[str, RetrySettings] = Field(default_factory=dict)
    scheduler: SchedulerSettings = SchedulerSettings()
    supervisor: SupervisorSettings = SupervisorSettings()
    smtp: SmtpSettings = SmtpSettings()
    notify_webhook: NotifyWebhookSettings = NotifyWebhookSettings()


def dotenv() -> dict[str, str]:
    """The ``.env`` file of the working directory (empty if there is none)."""
    path = Path(ENV_FILE)
    if not path.is_file():
        return {}
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def secrets_dir() -> Path:
    """``PRIVASYNC_SECRETS_DIR`` from the environment or ``.env``, else ``/run/secrets``."""
    name = ENV_PREFIX + "SECRETS_DIR"
    found = _get_ci(os.environ, name) or _get_ci(dotenv(), name)
    return Path(found) if found else DEFAULT_SECRETS_DIR


def _get_ci(values: Mapping[str, str], name: str) -> str | None:
    if name in values:
        return values[name]
    folded = name.casefold()
    return next((v for k, v in values.items() if k.casefold() == folded), None)


def file_sources() -> list[tuple[str, PydanticBaseSettingsSource]]:
    """Each source but the defaults, strongest first, named as ``config show`` says them."""
    return [("env", EnvSettingsSource(Settings)), (".env", DotEnvSettingsSource(Settings)),
            ("secrets file", NestedSecretsSettingsSource(
                SecretsSettingsSource(Settings, secrets_dir=secrets_dir()),
                secrets_dir_missing="ok"))]
