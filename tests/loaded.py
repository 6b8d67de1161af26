"""Run the suite on a busy machine: ``python -m tests.loaded [pytest arguments]``.

CI runs on a developer's machine, often while other work still loads its cores. This
starts busy processes (``PRIVASYNC_TEST_BUSY_PER_CORE``, 2 per core unless set), each
spinning at normal priority, runs pytest beside them, and stops them however pytest ends. A
test that passes only on an idle machine (one that asserts a moment after a proxy of the
state it wants, or bounds a wait too tightly) fails here first. A busy process also exits by
itself when this runner is gone, so a killed run leaves nothing spinning.

Exit status is pytest's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

SPIN = """
import os, sys
parent = int(sys.argv[1])
n = 0
while True:
    n += 1
    if n % 2_000_000 == 0 and os.getppid() != parent:
        break
"""


def _per_core() -> int:
    raw = os.environ.get("PRIVASYNC_TEST_BUSY_PER_CORE", "2")
    if not raw.isdigit():
        raise SystemExit(f"PRIVASYNC_TEST_BUSY_PER_CORE must be a whole number, not {raw!r}")
    return int(raw)


def main(argv: list[str]) -> int:
    cores = len(os.sched_getaffinity(0))
    count = _per_core() * cores
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN, str(os.getpid())])
                for _ in range(count)]
    print(f"tests.loaded: {count} busy processes beside the suite on {cores} cores "
          f"(timeout scale {os.environ.get('PRIVASYNC_TEST_TIMEOUT_SCALE', '1')})", flush=True)
    started = time.monotonic()
    try:
        return subprocess.call([sys.executable, "-m", "pytest", *argv])
    finally:
        for spinner in spinners:
            spinner.kill()
        for spinner in spinners:
            spinner.wait()
        print(f"tests.loaded: the suite took {time.monotonic() - started:.0f} s under load",
              flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
