"""deploy/Dockerfile and .dockerignore: linted by hadolint, and the promises of the image
(multi-stage, slim base, non-root, no compilers, privasync as entrypoint, a healthcheck)
read from the file. No Docker engine runs here, so the image is not built."""

from __future__ import annotations

import fnmatch
import re
import subprocess
from pathlib import Path

from tests.deploy.conftest import DEPLOY, ROOT, tool
from tests.timing import scaled

DOCKERFILE = DEPLOY / "Dockerfile"


def _hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("hadolint"), "--no-color", str(path)], capture_output=True,
                          text=True, timeout=scaled(60))


def test_hadolint_finds_nothing_in_the_dockerfile():
    done = _hadolint(DOCKERFILE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_does_find_a_bad_practice(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text(DOCKERFILE.read_text().replace(
        "USER 10001:10001", "RUN apt-get install gcc\nUSER 10001:10001"))
    done = _hadolint(bad)
    assert done.returncode == 1 and "DL3008" in done.stdout  # unpinned apt package


def _stages() -> list[list[str]]:
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    stages: list[list[str]] = []
    for line in lines:
        if line.startswith("FROM "):
            stages.append([])
        stages[-1].append(line)
    return stages


def test_two_stages_on_the_slim_base_and_a_final_stage_without_compilers():
    build, final = _stages()
    assert build[0] == "FROM python:3.11-slim AS build" and final[0] == "FROM python:3.11-slim"
    final_text = "\n".join(final)
    assert not re.search(r"\b(gcc|g\+\+|build-essential|make|pip install)\b", final_text)
    assert "COPY --from=build /opt/privasync /opt/privasync" in final


def test_the_final_stage_runs_privasync_as_a_numeric_non_root_user_with_a_healthcheck():
    final = _stages()[-1]
    users = [ln for ln in final if ln.startswith("USER ")]
    assert users == ["USER 10001:10001"]
    assert final.index(users[0]) < final.index(next(ln for ln in final
                                                    if ln.startswith("ENTRYPOINT")))
    assert 'ENTRYPOINT ["privasync"]' in final
    assert any(ln.startswith("HEALTHCHECK ") and "/healthz" in ln for ln in final)


def _ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore semantics for the patterns used here: the last match decides."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, pat) or path.startswith(pat + "/") or (
                pat.startswith("**/") and fnmatch.fnmatch(Path(path).name, pat[3:])):
            ignored = not negate
    return ignored


def test_the_build_context_holds_what_is_copied_and_no_local_state():
    patterns = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()
                if ln.strip() and not ln.startswith("#")]
    copied = [src for stage in _stages() for ln in stage if ln.startswith("COPY ")
              and "--from=" not in ln for src in ln.split()[1:-1]]
    assert copied, "no COPY found"
    for src in copied:
        assert (ROOT / src).exists(), src
        assert not _ignored(src, patterns), f"{src} is copied but .dockerignore drops it"
    for local in (".venv/bin/python", "var/privasync.db", "var/secret.key", ".git/HEAD",
                  "tests/conftest.py", "api/__pycache__/app.cpython-311.pyc", ".env"):
        assert _ignored(local, patterns), f"{local} would be sent to the build"
