"""``python -m bench.window``: HubSpot's shared rate window alone, without the pipeline.

Two processes of four threads each call the HubSpot emulator (100 calls per rolling
10 s, answering in 100 ms) flat out for 32 s through one Redis window, as the workers
do; a refused thread waits the time the window named (standing in for the delayed
dispatch message). The budget figures are bench/backlog.py's. It tells the window's own
precision apart from how fast the rest of privasync feeds it on a given machine.
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
import time
import uuid

from bench.backlog import LIMIT, WINDOW, budget
from bench.run import DEFAULT_REDIS
from privasync.emulators.hubspot import HubSpotEmulator

SECONDS, PROCESSES, THREADS = 32.0, 2, 4


def _process(url: str, token: str, redis_url: str, namespace: str, until: float) -> None:
    from connectors.hubspot.limits import WindowedSession, hold_seconds
    from connectors.ratelimits import Limits
    from core.errors import Throttled

    window = Limits(redis_url, namespace=namespace).window(
        "hubspot", limit=LIMIT, seconds=WINDOW, hold_seconds=hold_seconds(10))
    session = WindowedSession(10, window)
    session.headers["Authorization"] = f"Bearer {token}"

    def calls() -> None:
        while time.time() < until:
            try:
                session.get(f"{url}/communication-preferences/v3/definitions")
            except Throttled as full:
                time.sleep(min(full.retry_after or 0.05, max(0.0, until - time.time())))

    threads = [threading.Thread(target=calls) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def main() -> int:
    redis_url = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_REDIS
    hub = HubSpotEmulator()
    hub.latency_seconds = 0.1
    url = hub.start()
    until, namespace = time.time() + SECONDS, f"privasync-bench:{uuid.uuid4().hex[:8]}"
    processes = [multiprocessing.Process(target=_process, args=(
        url, hub.access_token, redis_url, namespace, until)) for _ in range(PROCESSES)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    with hub.lock:
        figures = budget(list(hub.admitted_at)) | {"hubspot_429": hub.rate_limited}
    hub.stop()
    print(f"HubSpot window alone, {PROCESSES} processes x {THREADS} threads, "  # noqa: T201
          f"{SECONDS:.0f} s: {figures}")
    return 0 if figures["hubspot_429"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
