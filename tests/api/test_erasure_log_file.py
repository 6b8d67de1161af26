"""The erasure log file: appended only, once per erasure, its owner's alone, and a line cut
short by a crash neither hides the others nor glues onto the next."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.erasure_record import ErasureRecord
from core.errors import ConfigError
from privasync.app.erasure_log import FileErasureLog


def entry(n: int) -> ErasureRecord:
    return ErasureRecord(f"request-{n}", datetime(2026, 12, 1, tzinfo=UTC), (f"subject-{n}",),
                         1, (("email", "ab" * 32),), (("hubspot", "cd" * 32),), ("hubspot",))


def test_an_erasure_is_appended_once_and_read_back(tmp_path: Path):
    log = FileErasureLog(tmp_path / "logs" / "erasure.jsonl")
    log.append([entry(1)])
    log.append([entry(1), entry(2)])  # a flush repeated after a crash
    assert log.read() == [entry(1), entry(2)]
    assert len(log.path.read_text().splitlines()) == 2
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o600


def test_a_line_torn_by_a_crash_is_skipped_and_not_glued_to_the_next(tmp_path: Path):
    log = FileErasureLog(tmp_path / "erasure.jsonl")
    log.append([entry(1)])
    with log.path.open("a") as torn:
        torn.write('{"v": 1, "request": "request-2", "compl')
    assert log.read() == [entry(1)]
    log.append([entry(2)])
    assert log.read() == [entry(1), entry(2)]


def test_a_damaged_line_in_the_middle_is_refused_with_its_number(tmp_path: Path):
    log = FileErasureLog(tmp_path / "erasure.jsonl")
    log.append([entry(1)])
    with log.path.open("a") as damaged:
        damaged.write("not json\n")
    log.append([entry(2)])
    with pytest.raises(ConfigError, match="line 2 cannot be read"):
        log.read()
