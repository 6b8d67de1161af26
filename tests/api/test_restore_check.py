"""``privasync restore-check`` end to end on the single-machine shape: a backup of the SQLite
file taken before an erasure, the erasure, the backup restored over the database, and
the check erasing the person again from the erasure log the applier wrote."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from core.applier import LEASE as APPLIER_LEASE
from core.db import leases, subject_keys, suppression
from core.identity import IdentityMap
from privasync.app.bootstrap import build, open_database
from privasync.app.erasure_log import DEFAULT_NAME, FileErasureLog
from privasync.app.settings import Settings
from privasync.cli.main import main
from tests.backups import backup

MAPPINGS = Path(__file__).parents[2] / "mappings"
ADDRESS = "Restored.Person@example.org"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    var = tmp_path / "var"
    mappings = tmp_path / "mappings"  # no partner: an erasure completes without an ack
    shutil.copytree(MAPPINGS, mappings)
    (mappings / "partners.yaml").write_text("partners: {}\n")
    monkeypatch.setenv("PRIVASYNC_DATABASE_URL", f"sqlite:///{var}/privasync.db")
    monkeypatch.setenv("PRIVASYNC_VAR_DIR", str(var))
    monkeypatch.setenv("PRIVASYNC_MAPPINGS_DIR", str(mappings))
    for name in [n for n in os.environ if n.startswith(("PRIVASYNC_HUBSPOT", "PRIVASYNC_SALES",
                                                        "PRIVASYNC_MAILCHIMP", "PRIVASYNC_SMTP",
                                                        "PRIVASYNC_NOTIFY"))]:
        monkeypatch.delenv(name)
    return var


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def request(kind: str) -> str:
    """A request through the CLI, applied by the applier privasync builds (its erasure log
    included)."""
    code, out = run("requests", "create", "--kind", kind, "--email", ADDRESS,
                        "--identity", "verified")
    assert code == 0, out
    container = build(Settings())
    try:
        while (report := container.applier.tick()) is not None and report.rows:
            pass
    finally:
        container.close()
    return out.splitlines()[0]


def held() -> tuple[int, int, str | None]:
    """Keys, suppression digests, and the subject the address resolves to."""
    engine, keyring = open_database(Settings())
    try:
        with engine.connect() as conn:
            keys = conn.execute(select(func.count()).select_from(subject_keys)).scalar_one()
            suppressed = conn.execute(select(func.count()).select_from(suppression)
                                      ).scalar_one()
            who = IdentityMap(keyring).by_email(conn, ADDRESS)
    finally:
        engine.dispose()
    return int(keys), int(suppressed), who


def restore_file(taken: Path, database: Path) -> None:
    """What an operator does: processes stopped, the backup copied over the file (the
    live file's write-ahead log removed, or SQLite would replay it onto the backup)."""
    for extra in ("-wal", "-shm"):
        Path(f"{database}{extra}").unlink(missing_ok=True)
    database.write_bytes(taken.read_bytes())


def test_a_restored_backup_gives_nobody_back_after_restore_check(env: Path, tmp_path: Path):
    request("access")  # the person is known, their key alive
    assert held()[0] == 1 and held()[2] is not None
    database = env / "privasync.db"
    taken = backup(f"sqlite:///{database}", tmp_path / "nightly.db")
    erasure = request("erasure")
    assert held() == (0, 1, None)
    [entry] = FileErasureLog(env / DEFAULT_NAME).read()
    assert entry.request_id == erasure
    assert ADDRESS.lower() not in (env / DEFAULT_NAME).read_text().lower()

    restore_file(taken, database)
    assert held()[0] == 1 and held()[1] == 0  # the backup gave the person back

    code, out = run("restore-check")
    assert code == 1, out
    assert f"request {erasure}: erased again" in out and "suppression" in out
    assert ADDRESS.lower() not in out.lower()
    assert held() == (0, 1, None)

    code, out = run("restore-check")
    assert code == 0 and "nothing to do" in out, out


def test_a_missing_erasure_log_is_one_line_and_exit_2(env: Path,
                                                      monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PRIVASYNC_ERASURE_LOG", str(env / "elsewhere" / "erasure.jsonl"))
    code, out = run("restore-check")
    assert code == 2 and "no erasure log at" in out and "Traceback" not in out
    assert len(out.strip().splitlines()) == 1


def test_an_unreadable_erasure_log_line_is_exit_2(env: Path):
    request("access")
    log = env / DEFAULT_NAME
    log.write_text(json.dumps({"v": 1, "request": "x"}) + "\n")
    code, out = run("restore-check")
    assert code == 2 and "line 1 cannot be read" in out, out


def test_a_missing_database_is_exit_2_and_creates_nothing(env: Path,
                                                          monkeypatch: pytest.MonkeyPatch):
    request("access")
    missing = env / "restored" / "privasync.db"
    monkeypatch.setenv("PRIVASYNC_DATABASE_URL", f"sqlite:///{missing}")
    code, out = run("restore-check")
    assert code == 2 and "no database at" in out, out
    assert not missing.exists()


def test_a_backup_from_before_a_kek_rotation_is_moved_to_the_current_kek(env: Path,
                                                                         tmp_path: Path):
    request("access")
    database = env / "privasync.db"
    taken = backup(f"sqlite:///{database}", tmp_path / "nightly.db")
    code, out = run("keys", "rotate", "--kek")
    assert code == 0, out
    request("erasure")
    restore_file(taken, database)
    code, out = run("restore-check")
    assert code == 1 and "re-wrapped under" in out, out
    code, out = run("keys", "status", "--format", "json")
    found = json.loads(out)
    assert list(found["keys_by_kek"]) == [found["kek"]] and held()[:2] == (0, 1)


def test_a_container_that_applied_and_closed_leaves_no_applier_lease_behind(env: Path):
    """A CLI step after a closed container says at once that nobody applies it yet,
    instead of waiting out a lease held by a process that has gone."""
    request("access")  # ticks an applier in a container, then closes it
    engine, _ = open_database(Settings())
    try:
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(leases).where(
                leases.c.name == APPLIER_LEASE)).scalar_one() == 0
    finally:
        engine.dispose()
