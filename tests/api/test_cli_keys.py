"""``privasync keys``: the single machine's KEK file rotates, the digest key rotates, and
every secret file privasync makes is its owner's alone."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from core.identity import IdentityMap
from privasync.app import keyfiles
from privasync.app.bootstrap import open_database
from privasync.app.settings import Settings
from privasync.cli.main import main

MAPPINGS = Path(__file__).parents[2] / "mappings"
ADDRESS = "Grace.Hopper@example.org"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    var = tmp_path / "var"
    monkeypatch.setenv("PRIVASYNC_DATABASE_URL", f"sqlite:///{var}/privasync.db")
    monkeypatch.setenv("PRIVASYNC_VAR_DIR", str(var))
    monkeypatch.setenv("PRIVASYNC_MAPPINGS_DIR", str(MAPPINGS))
    return var


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def seed() -> str:
    engine, keyring = open_database(Settings())
    with engine.begin() as conn:
        identity = IdentityMap(keyring)
        subject = identity.create(conn, datetime.now(UTC))
        identity.add_email(conn, subject, ADDRESS)
    engine.dispose()
    return subject


def address_of(subject: str) -> str | None:
    engine, keyring = open_database(Settings())
    with engine.connect() as conn:
        found = IdentityMap(keyring).email(conn, subject)
        assert IdentityMap(keyring).by_email(conn, ADDRESS) == subject
    engine.dispose()
    return found


def status() -> dict[str, object]:
    result = CliRunner().invoke(main, ["keys", "status", "--format", "json"])
    assert result.exit_code == 0, result.output
    found: dict[str, object] = json.loads(result.output)
    return found


def test_var_the_database_and_the_key_files_are_the_owners_alone(env: Path):
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert mode(env) == 0o700
    for name in ("secret.key", "kek.key", "privasync.db"):
        assert mode(env / name) == 0o600, name
    assert not [p for p in env.iterdir() if p.name.startswith(".")]  # no temporary left


def test_the_kek_file_rotates_and_keeps_the_old_key_for_the_backup_horizon(env: Path):
    subject = seed()
    before = (env / "kek.key").read_text()
    old_id = status()["kek"]
    result = CliRunner().invoke(main, ["keys", "rotate", "--kek"])
    assert result.exit_code == 0, result.output
    after = (env / "kek.key").read_text()
    assert after.splitlines()[1:] == before.splitlines() and mode(env / "kek.key") == 0o600
    found = status()
    assert found["kek"] != old_id and found["keys_by_kek"] == {found["kek"]: 2}
    assert address_of(subject) == ADDRESS.lower()
    assert before.strip() not in result.output and after.strip() not in result.output
    assert f"KEK {old_id} kept until" in result.output


def test_prune_destroys_the_old_kek_past_the_horizon_and_an_old_backup_opens_nothing(
        env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from privasync.cli import keys as cli_keys
    from tests.backups import backup

    subject = seed()
    old_id = status()["kek"]
    taken = backup(f"sqlite:///{env}/privasync.db", tmp_path / "nightly.db")
    assert CliRunner().invoke(main, ["keys", "rotate", "--kek"]).exit_code == 0
    pruned = CliRunner().invoke(main, ["keys", "prune"])
    assert pruned.exit_code == 0 and f"KEK {old_id} kept until" in pruned.output
    assert len((env / "kek.key").read_text().splitlines()) == 2

    later = datetime.now(UTC) + timedelta(days=36)
    monkeypatch.setattr(cli_keys, "_now", lambda: later)
    pruned = CliRunner().invoke(main, ["keys", "prune"])
    assert pruned.exit_code == 0, pruned.output
    assert f"KEK {old_id} destroyed" in pruned.output
    assert len((env / "kek.key").read_text().splitlines()) == 1
    assert address_of(subject) == ADDRESS.lower()  # live keys were re-wrapped first

    monkeypatch.setenv("PRIVASYNC_DATABASE_URL", f"sqlite:///{taken}")
    opened = CliRunner().invoke(main, ["keys", "status"])
    assert opened.exit_code == 2 and f"wrapped under KEK {old_id}" in opened.output


def test_the_digest_key_rotates_and_look_ups_still_find_the_person(env: Path):
    subject = seed()
    result = CliRunner().invoke(main, ["keys", "rotate", "--digest", "--wait", "0"])
    assert result.exit_code == 0, result.output
    assert "digest key version 2 is current" in result.output
    found = status()
    assert (found["digest_version"], found["digest_floor"]) == (2, 2)
    assert found["digests_by_version"] == {"2": 1}
    assert address_of(subject) == ADDRESS.lower()


def test_rotate_says_what_it_needs(env: Path):
    result = CliRunner().invoke(main, ["keys", "rotate"])
    assert result.exit_code == 2 and "--kek, --digest or both" in result.output


def test_a_kek_the_database_does_not_know_is_refused_with_what_to_do(
        env: Path, monkeypatch: pytest.MonkeyPatch):
    seed()
    monkeypatch.setenv("PRIVASYNC_KEK", "a-different-key-encryption-key-000000")
    result = CliRunner().invoke(main, ["keys", "status"])
    assert result.exit_code in (1, 2) and "does not hold" in result.output
    assert "a-different-key" not in result.output
    monkeypatch.setenv("PRIVASYNC_KEK_PREVIOUS", (env / keyfiles.KEK_FILE).read_text().strip())
    rotated = CliRunner().invoke(main, ["keys", "rotate", "--kek"])
    assert rotated.exit_code == 0, rotated.output
    assert "remove it" in rotated.output  # PRIVASYNC_KEK_PREVIOUS is not needed any more
    monkeypatch.delenv("PRIVASYNC_KEK_PREVIOUS")
    assert status()["keys_by_kek"] == {status()["kek"]: 2}


def test_processes_starting_together_agree_on_one_generated_key(tmp_path: Path):
    """The first to create var/kek.key wins; the others read its key, never their own."""
    path = tmp_path / "var" / keyfiles.KEK_FILE
    assert keyfiles.write_private(path, "first\n", exclusive=True)
    assert not keyfiles.write_private(path, "second\n", exclusive=True)
    assert path.read_text() == "first\n" and mode(path) == 0o600
    assert [p.name for p in path.parent.iterdir()] == [keyfiles.KEK_FILE]


def test_a_previous_kek_from_the_environment_past_the_horizon_is_left_to_the_operator(
        env: Path, monkeypatch: pytest.MonkeyPatch):
    from privasync.cli import keys as cli_keys

    seed()
    old = (env / keyfiles.KEK_FILE).read_text().strip()
    old_id = status()["kek"]
    monkeypatch.setenv("PRIVASYNC_KEK", "the-next-key-encryption-key-0123456789")
    monkeypatch.setenv("PRIVASYNC_KEK_PREVIOUS", old)
    assert CliRunner().invoke(main, ["keys", "rotate", "--kek"]).exit_code == 0
    monkeypatch.setattr(cli_keys, "_now", lambda: datetime.now(UTC) + timedelta(days=36))
    pruned = CliRunner().invoke(main, ["keys", "prune"])
    assert pruned.exit_code == 1, pruned.output
    assert f"KEK {old_id} is past the backup horizon: remove it from " \
           "PRIVASYNC_KEK_PREVIOUS" in pruned.output
    assert old not in pruned.output
