"""deploy/systemd: `systemd-analyze verify` on every unit (with ExecStart pointed at this
checkout's privasync, since verify checks that the command exists), plus what the units
promise: the migration first, hardening, and a worker stop longer than its shutdown."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

from privasync.app.settings import WorkerSettings
from tests.deploy.conftest import DEPLOY, tool
from tests.timing import scaled

UNITS = DEPLOY / "systemd"
SERVICES = ("privasync-api.service", "privasync-scheduler.service", "privasync-worker@.service")
HARDENING = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
             "PrivateTmp": "yes", "PrivateDevices": "yes", "RestrictSUIDSGID": "yes",
             "CapabilityBoundingSet": "", "User": "privasync"}


def _verify(tmp_path: Path, names: list[str], texts: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    privasync = str(Path(sys.executable).parent / "privasync")
    for unit in UNITS.iterdir():
        if unit.suffix in (".service", ".target"):
            text = (texts or {}).get(unit.name, unit.read_text())
            text = text.replace("/opt/privasync/bin/privasync", privasync).replace(
                "EnvironmentFile=/etc/", "EnvironmentFile=-/etc/")
            (tmp_path / unit.name).write_text(text)
            if unit.name.endswith("@.service"):
                (tmp_path / unit.name.replace("@", "@01")).write_text(text)
    return subprocess.run([tool("systemd-analyze"), "verify", "--man=no",
                           *[str(tmp_path / n) for n in names]],
                          capture_output=True, text=True, timeout=scaled(120))


ALL = ["privasync-migrate.service", "privasync-api.service", "privasync-scheduler.service",
       "privasync-worker@01.service", "privasync.target"]


def test_systemd_analyze_verifies_every_unit_without_a_warning(tmp_path):
    done = _verify(tmp_path, ALL)
    assert (done.returncode, done.stderr.strip()) == (0, "")


def test_systemd_analyze_does_warn_about_a_misspelt_option(tmp_path):
    api = (UNITS / "privasync-api.service").read_text().replace("ProtectHome=", "ProtectHom=")
    done = _verify(tmp_path, ["privasync-api.service"], {"privasync-api.service": api})
    assert "Unknown key 'ProtectHom'" in done.stderr


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((UNITS / name).read_text())
    return parser


def test_every_process_requires_the_migration_first_and_does_not_migrate_itself():
    migrate = _unit("privasync-migrate.service")
    assert migrate["Service"]["Type"] == "oneshot"
    assert migrate["Service"]["ExecStart"].endswith("privasync db upgrade")
    for name in SERVICES:
        unit = _unit(name)
        assert "privasync-migrate.service" in unit["Unit"]["Requires"]
        assert "privasync-migrate.service" in unit["Unit"]["After"]
        assert "PRIVASYNC_MIGRATE_ON_START=false" in (UNITS / name).read_text()


def test_every_unit_is_hardened():
    for name in (*SERVICES, "privasync-migrate.service"):
        service = _unit(name)["Service"]
        for option, value in HARDENING.items():
            assert service.get(option) == value, f"{name}: {option}"


def test_a_stopping_worker_gets_longer_than_its_own_shutdown_wait():
    stop = _unit("privasync-worker@.service")["Service"]["TimeoutStopSec"]
    assert float(stop.removesuffix("s")) > WorkerSettings().shutdown_seconds
