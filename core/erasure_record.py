"""An entry of the erasure log, and its format on disk (core.erasures writes them,
core.restore replays them, the ``ErasureLog`` port in core.ports keeps them).

Kept apart from core.erasures so that the port can name the entry without importing
the module that uses the port.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.errors import BadInput

FORMAT = 1


@dataclass(frozen=True)
class ErasureRecord:
    """One completed erasure, as the erasure log keeps it."""

    request_id: str
    completed_at: datetime
    subject_ids: tuple[str, ...]
    digest_version: int
    identifiers: tuple[tuple[str, str], ...]  # (kind, keyed hash at digest_version)
    refs: tuple[tuple[str, str], ...]  # (system, keyed hash of "system:ref")
    destinations: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"v": FORMAT, "request": self.request_id,
                "completed_at": self.completed_at.isoformat(),
                "subjects": list(self.subject_ids), "digest_version": self.digest_version,
                "identifiers": [list(i) for i in self.identifiers],
                "refs": [list(r) for r in self.refs], "destinations": list(self.destinations)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ErasureRecord:
        """Raises BadInput if ``data`` is not an entry of this format."""
        try:
            if data["v"] != FORMAT:
                raise BadInput(f"erasure log entry format {data['v']!r} is not known")
            at = datetime.fromisoformat(data["completed_at"])
            if at.tzinfo is None:
                raise BadInput("erasure log entry time without a zone")
            return cls(str(data["request"]), at, tuple(str(s) for s in data["subjects"]),
                       int(data["digest_version"]),
                       tuple((str(k), str(d)) for k, d in data["identifiers"]),
                       tuple((str(s), str(d)) for s, d in data["refs"]),
                       tuple(str(d) for d in data.get("destinations", ())))
        except (KeyError, TypeError, ValueError) as exc:
            raise BadInput(f"not an erasure log entry ({type(exc).__name__})") from exc
