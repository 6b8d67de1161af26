"""Small helpers: percentiles, vendor call counts, CPU time."""

from __future__ import annotations

import math
import re
import resource
from collections import Counter
from collections.abc import Sequence
from typing import Any

from privasync.emulators.http import Emulator

_IDS = [(re.compile(r"/[0-9a-f]{32}(?=/|$)"), "/{hash}"),
        (re.compile(r"/(?:003|00Q|0PK)\w{12,15}(?=/|$)"), "/{id}"),
        (re.compile(r"/lists/[0-9a-z]+"), "/lists/{list}"),
        (re.compile(r"/01g\w+-\d+$"), "/{next-page}"),
        (re.compile(r"/contacts/\d+"), "/contacts/{id}")]


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summary_ms(seconds: Sequence[float]) -> dict[str, Any]:
    def ms(v: float | None) -> float | None:
        return None if v is None else round(v * 1000, 1)
    return {"n": len(seconds), "p50_ms": ms(percentile(seconds, 50)),
            "p99_ms": ms(percentile(seconds, 99)), "max_ms": ms(max(seconds, default=None))}


def endpoint(key: str) -> str:
    """``GET /3.0/lists/abc/members/<md5>`` -> ``GET /3.0/lists/{list}/members/{hash}``."""
    for pattern, repl in _IDS:
        key = pattern.sub(repl, key)
    return key


def calls(emulator: Emulator) -> Counter[str]:
    """Served calls by endpoint (ids folded), a snapshot."""
    with emulator.lock:
        raw = Counter(emulator.calls)
    folded: Counter[str] = Counter()
    for key, n in raw.items():
        folded[endpoint(key)] += n
    return folded


def cpu_seconds() -> float:
    """CPU (user + system) used so far by this process: the app, the worker, the emulators."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
