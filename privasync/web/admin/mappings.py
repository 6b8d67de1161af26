"""``/api/v1/mappings``: the data map the running service enforces, as
``privasync mappings show --format json`` prints it (R23)."""

from __future__ import annotations

from pydantic import BaseModel, Field, RootModel

from core.datamap import as_rows
from privasync.app.views import Mapped
from privasync.web.admin.openapi import Call, Operation


class FlowView(BaseModel):
    """Whether a canonical field may flow to a destination: per shared purpose, on what
    condition (no purpose: it never goes there)."""

    field: str
    category: str = Field(description="Its fideslang data category.")
    special: bool = Field(description="A special category (Art. 9).")
    destination: str
    purposes: dict[str, str]


class DataMap(RootModel[list[FlowView]]):
    """Every canonical field x destination."""


def get_mappings(call: Call[Mapped]) -> DataMap:
    return DataMap.model_validate(as_rows(call.uses.mappings))


OPERATIONS = (
    Operation("GET", "/mappings", "The data map: every field x destination, and on what "
              "condition it may flow", "mappings:read", get_mappings, response=DataMap,
              tag="mappings"),
)
