"""``/api/v1/subjects/{id}``: a subject's consent states and what privasync holds about
them, counted; never a personal value (those come only through a request's export)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from core import subjects
from core.db import reader
from core.errors import NotFound
from privasync.app.views import Records
from privasync.web.admin.openapi import Call, Operation


class EvidenceView(BaseModel):
    """Where the proof of a decision lies (Art. 7(1))."""

    source: str
    method: str
    wording_version: str | None
    reference_kind: str | None = Field(description="e.g. `hubspot-event`, `request`.")
    reference: str | None = Field(description="The event or request id, when the reference "
                                  "is no more than that.")


class ConsentView(BaseModel):
    purpose: str
    channel: str
    status: str
    occurred_at: datetime
    source: str
    evidence: EvidenceView | None


class SubjectRequest(BaseModel):
    id: str
    kind: str
    status: str
    received_at: datetime


class SubjectView(BaseModel):
    """A subject: ids, states and counts."""

    id: str
    created_at: datetime
    merged_into: str | None
    erased_at: datetime | None
    is_customer: bool
    consents: list[ConsentView]
    identifiers: dict[str, int] = Field(description="How many of each kind privasync "
                                        "holds (keyed hashes and ciphertext), never values.")
    systems: dict[str, int] = Field(description="References per system (counted).")
    requests: list[SubjectRequest]
    jobs: dict[str, dict[str, int]] = Field(description="Jobs per destination and status.")


def get_subject(call: Call[Records]) -> SubjectView:
    subject_id = call.path["subject_id"]
    found = None
    if len(subject_id) <= 36:
        with reader(call.uses.engine).connect() as conn:
            found = subjects.describe(conn, call.uses.keyring, subject_id)
    if found is None:
        raise NotFound("no subject with that id")
    return SubjectView.model_validate(found.__dict__)


OPERATIONS = (
    Operation("GET", "/subjects/{subject_id}", "A subject's consent states and what is held, "
              "counted", "subjects:read", get_subject, response=SubjectView, errors=(404,),
              tag="subjects", description="Ids and states only: no address, name or value."),
)
