"""Steps only privasync itself takes (the person told, or not; a request finished) are
refused from an admin, before anything is stored: nobody can mark a person told, or
complete and shred an erasure, by hand."""

from __future__ import annotations

import pytest

from core.errors import BadInput
from core.model import RequestStep
from privasync.app.subject_requests import act


@pytest.mark.parametrize("step", [RequestStep.CONFIRMED, RequestStep.NOT_TOLD,
                                  RequestStep.FINISH])
def test_an_admin_cannot_take_a_step_that_is_privasyncs_own(step: RequestStep) -> None:
    with pytest.raises(BadInput, match="privasync's own"):
        act(None, "any-request", step, actor="cli")  # type: ignore[arg-type]
