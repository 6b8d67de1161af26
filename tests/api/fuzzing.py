"""How many generated inputs the fuzz tests sent, by target, printed at the end of the run
(tests/conftest.py's terminal summary) for the record."""

from __future__ import annotations

from collections import Counter

SENT: Counter[str] = Counter()
