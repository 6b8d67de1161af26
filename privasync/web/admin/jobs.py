"""``/api/v1/jobs``: the outbox as an operator sees it, and dead letters sent back.

The same as ``privasync jobs list|retry``: ids, states, error classes and times,
never values; every retry is a ledger entry naming the calling token.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core import deadletters
from core.db import reader
from core.errors import Conflict, NotFound
from privasync.app.views import Jobs
from privasync.web.admin.errors import FieldProblem, ValidationFailed
from privasync.web.admin.openapi import Call, Operation

Status = Literal["pending", "running", "done", "dead", "superseded", "failed"]


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dead: bool = Field(default=False, description="Only dead jobs (as `status=dead`).")
    status: Status | None = Field(default=None, description="Default: every job not done "
                                  "or superseded.")
    destination: str | None = Field(default=None, min_length=1, max_length=64)
    limit: int = Field(default=100, ge=1, le=1000)
    cursor: str | None = Field(default=None, pattern=r"^[0-9]{1,18}$", description=(
        "The `next_cursor` of the previous page."))


class JobView(BaseModel):
    """A job: ids, state, error class and times; never a value."""

    id: int
    kind: str
    destination: str
    subject_id: str
    status: str
    attempts: int
    last_error_class: str | None
    note: str | None
    created_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None = Field(description="Pending or running jobs only.")
    finished_at: datetime | None
    retried_at: datetime | None = Field(description="When an operator last sent it back.")


class JobPage(BaseModel):
    jobs: list[JobView]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null "
                                    "at the end.")


class RetryDead(BaseModel):
    model_config = ConfigDict(extra="forbid")

    destination: str | None = Field(default=None, min_length=1, max_length=64,
                                    description="Only this destination's dead jobs.")


class RetryResult(BaseModel):
    """Jobs sent back (due now, attempts from zero) and jobs superseded instead, with why
    (a waiting job will send the current state, the subject was erased, the request is
    no longer open)."""

    retried: list[int]
    superseded: dict[str, str]


def _view(job: deadletters.Job) -> JobView:
    return JobView(**job.as_dict())


def list_jobs(call: Call[Jobs]) -> JobPage:
    q = call.query(ListQuery)
    status = "dead" if q.dead else q.status
    if q.dead and q.status not in (None, "dead"):
        # The query fits its schema field by field but not as a whole: a 422 like any other
        # query that does not fit (the document declares 422, not 400, for a query).
        raise ValidationFailed([FieldProblem(
            field="status", problem="dead=true asks for status dead; name one or the other")])
    with reader(call.uses.engine).connect() as conn:
        found = deadletters.listing(conn, status=status, destination=q.destination,
                                    limit=q.limit, after=int(q.cursor or 0))
    more = len(found) == q.limit
    return JobPage(jobs=[_view(j) for j in found],
                   next_cursor=str(found[-1].id) if more else None)


def _job_id(call: Call[Jobs]) -> int:
    raw = call.path["job_id"]
    if not raw.isdigit() or len(raw) > 18:
        raise NotFound("no job with that id")
    return int(raw)


def get_job(call: Call[Jobs]) -> JobView:
    with reader(call.uses.engine).connect() as conn:
        job = deadletters.get(conn, _job_id(call))
    if job is None:
        raise NotFound("no job with that id")
    return _view(job)


def _answer(call: Call[Jobs], done: deadletters.Retried) -> RetryResult:
    if done.destinations:
        call.uses.dispatch(sorted(done.destinations))
    return RetryResult(retried=done.retried,
                       superseded={str(k): v for k, v in sorted(done.superseded.items())})


def retry_job(call: Call[Jobs]) -> RetryResult:
    job_id = _job_id(call)
    done = deadletters.retry(call.uses.engine, [job_id], call.now,
                             actor=call.principal.actor)
    if done.not_dead:
        with reader(call.uses.engine).connect() as conn:
            job = deadletters.get(conn, job_id)
        if job is None:
            raise NotFound("no job with that id")
        raise Conflict(f"job {job_id} is {job.status}, not dead: nothing to retry")
    return _answer(call, done)


def retry_dead(call: Call[Jobs]) -> RetryResult:
    body = call.body(RetryDead)
    done = deadletters.retry_dead(call.uses.engine, call.now, actor=call.principal.actor,
                                  destination=body.destination)
    return _answer(call, done)


OPERATIONS = (
    Operation("GET", "/jobs", "Outbox jobs, oldest first, a page at a time", "jobs:read",
              list_jobs, response=JobPage, query=ListQuery, tag="jobs",
              description="Filter with `dead`, `status`, `destination`; page with `limit` and "
                          "`cursor`."),
    Operation("GET", "/jobs/{job_id}", "One job", "jobs:read", get_job, response=JobView,
              errors=(404,), tag="jobs"),
    Operation("POST", "/jobs/{job_id}/retry", "Send a dead job back: due now, attempts "
              "from zero", "jobs:write", retry_job, response=RetryResult, errors=(404, 409),
              tag="jobs", description="A ledger entry names the token. A state job whose "
              "subject has one waiting already is superseded by it instead."),
    Operation("POST", "/jobs/retry-dead", "Send back every dead job (of one destination)",
              "jobs:write", retry_dead, response=RetryResult, body=RetryDead, tag="jobs",
              description="A ledger entry per 500 jobs names the token."),
)
