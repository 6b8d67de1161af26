"""Shared helpers for the deploy/ checks: where the files and the validators are.

Every validator is installed by the project (pyproject's dev extras, or
deploy/ensure-tools.sh from `make test`); a missing one fails the test, never skips it."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"


def tool(name: str) -> str:
    """A command-line validator: next to this interpreter (pip-installed) or on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is required: `make test` installs it (deploy/ensure-tools.sh, "
                    "pyproject dev extras)")
    return found
