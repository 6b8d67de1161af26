"""PRIVASYNC_MIGRATE_ON_START: one machine migrates at start; where a migrate job runs
first (compose, Kubernetes) a process refuses a schema it does not know."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from core import schema
from core.db import make_engine
from core.errors import ConfigError
from privasync.app.bootstrap import build
from privasync.app.settings import Settings

MAPPINGS = Path(__file__).parents[2] / "mappings"
ENVIRON = {"PRIVASYNC_PARTNER_CONTACT_CENTRE_SECRET": "s" * 16}


def _settings(tmp_path: Path, migrate: bool) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path}/p.db", var_dir=tmp_path,
                    mappings_dir=MAPPINGS, secret_key=SecretStr("k" * 32),
                    migrate_on_start=migrate)


def test_without_migrating_at_start_a_new_database_is_refused_naming_the_command(tmp_path):  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=r"run `privasync db upgrade`"):
        build(_settings(tmp_path, migrate=False), environ=ENVIRON)
    engine = make_engine(f"sqlite:///{tmp_path}/p.db")
    assert not schema.is_current(engine)  # it created nothing
    schema.upgrade(engine)
    assert schema.is_current(engine)
    engine.dispose()
    build(_settings(tmp_path, migrate=False), environ=ENVIRON).close()


def test_by_default_a_process_migrates_at_start(tmp_path):  # type: ignore[no-untyped-def]
    build(_settings(tmp_path, migrate=True), environ=ENVIRON).close()
    engine = make_engine(f"sqlite:///{tmp_path}/p.db")
    assert schema.is_current(engine)
    engine.dispose()
