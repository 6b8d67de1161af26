"""§7 POST /requests, §8 GET /requests/{id}, §9 DELETE /requests/{id}: what privasync sends
and what it is answered hold to their contracts, in both dialects; each refusal is the §7.5
400 (or 404 for an unknown id) with the §7.6 error object."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests

from connectors.partner import OpenDsrConnector
from core.errors import PermanentError
from core.model import ErasureStatus
from privasync.emulators.contracts import opendsr as spec
from privasync.emulators.opendsr import OpenDsrEmulator
from tests.contracts.opendsr.answers import dialect_of, holds, last, refusal, signed_under
from tests.contracts.opendsr.conftest import someone
from tests.timing import scaled

Connect = Callable[[OpenDsrEmulator], OpenDsrConnector]
ID = r"/[0-9a-f-]{36}"


def requests_at(processor: OpenDsrEmulator) -> str:
    dialect = dialect_of(processor)
    return dialect.version_path + dialect.requests_path


def test_an_erasure_request_and_its_201_hold_to_their_contracts(
        processor: OpenDsrEmulator, connect: Connect) -> None:
    who = someone("rq1")
    [receipt] = connect(processor).erase([who])
    assert (receipt.status, receipt.error) == (ErasureStatus.AWAITING_ACK, None)
    answer = last(processor, "POST", f"{requests_at(processor)}/?")
    created = holds(answer, spec.CREATED_STATUS, spec.Created)
    signed_under(answer, dialect_of(processor), processor.domain)
    assert created.subject_request_id == who.request_id
    sent = base64.b64decode(created.encoded_request)
    model = spec.SubjectRequest if dialect_of(processor) is spec.OPENDSR \
        else spec.LegacySubjectRequest
    request = model.model_validate_json(sent)
    assert (request.subject_request_type, request.api_version) == (
        "erasure", dialect_of(processor).api_version)


def test_a_resent_request_is_a_400_and_the_status_read_instead_holds_to_its_contract(
        processor: OpenDsrEmulator, connect: Connect) -> None:
    who = someone("rq2")
    connector = connect(processor)
    connector.erase([who])
    [again] = connector.erase([who])
    assert (again.status, again.vendor_status) == (ErasureStatus.AWAITING_ACK, 200)
    refusal(last(processor, "POST", f"{requests_at(processor)}/?"), spec.ERROR_STATUS)
    answer = last(processor, "GET", f"{requests_at(processor)}{ID}")
    status = holds(answer, spec.STATUS_STATUS, spec.Status)
    signed_under(answer, dialect_of(processor), processor.domain)
    assert (status.subject_request_id, status.request_status) == (who.request_id, "pending")


def test_a_cancellation_and_its_202_hold_to_their_contract(
        processor: OpenDsrEmulator, connect: Connect) -> None:
    who = someone("rq3")
    connector = connect(processor)
    connector.erase([who])
    assert connector.cancel(who.request_id) is True
    answer = last(processor, "DELETE", f"{requests_at(processor)}{ID}")
    cancelled = holds(answer, spec.CANCELLED_STATUS, spec.Cancelled)
    signed_under(answer, dialect_of(processor), processor.domain)
    assert cancelled.subject_request_id == who.request_id


def test_cancelling_a_completed_request_is_a_400_and_an_unknown_one_a_404(
        processor: OpenDsrEmulator, connect: Connect) -> None:
    who = someone("rq4")
    connector = connect(processor)
    connector.erase([who])
    processor.complete(who.request_id)
    with pytest.raises(PermanentError, match="completed"):
        connector.cancel(who.request_id)
    error = refusal(last(processor, "DELETE", f"{requests_at(processor)}{ID}"),
                    spec.ERROR_STATUS)
    assert error.message is not None and "pending" in error.message
    assert connector.cancel(str(uuid.uuid4())) is False
    refusal(last(processor, "DELETE", f"{requests_at(processor)}{ID}"), spec.UNKNOWN_STATUS)
    unknown = requests.get(f"{processor.url}{requests_at(processor)}/{uuid.uuid4()}",
                           timeout=scaled(5))
    assert unknown.status_code == spec.UNKNOWN_STATUS
    refusal(last(processor, "GET", f"{requests_at(processor)}{ID}"), spec.UNKNOWN_STATUS)


def valid(processor: OpenDsrEmulator) -> dict[str, Any]:
    document: dict[str, Any] = {
        "subject_request_id": str(uuid.uuid4()), "subject_request_type": "erasure",
        "submitted_time": "2026-03-01T09:30:00Z",
        "api_version": dialect_of(processor).api_version,
        "subject_identities": [{"identity_type": "email", "identity_format": "raw",
                                "identity_value": "ada@example.com"}]}
    if dialect_of(processor) is spec.OPENDSR:
        document["regulation"] = "gdpr"
    return document


@pytest.mark.parametrize(("case", "change", "named"), [
    ("wrong request type", {"subject_request_type": "deletion"}, "subject_request_type"),
    ("wrong identity type", {"subject_identities": [{
        "identity_type": "phone", "identity_format": "raw", "identity_value": "x"}]},
     "identity_type"),
    ("wrong identity format", {"subject_identities": [{
        "identity_type": "email", "identity_format": "base64", "identity_value": "x"}]},
     "identity_format"),
    ("unknown property", {"priority": "high"}, "priority"),
    ("missing field", {"submitted_time": None}, "submitted_time"),
    ("id not lowercase", {"subject_request_id": str(uuid.uuid4()).upper()},
     "subject_request_id"),
    ("time without offset", {"submitted_time": "2026-03-01T09:30:00"}, "submitted_time"),
    ("version not major.minor", {"api_version": "two"}, "api_version"),
])
def test_a_request_outside_its_contract_is_refused_with_the_error_object(
        processor: OpenDsrEmulator, case: str, change: dict[str, Any], named: str) -> None:
    document = {k: v for k, v in (valid(processor) | change).items() if v is not None}
    requests.post(f"{processor.url}{requests_at(processor)}", json=document, timeout=scaled(5))
    error = refusal(last(processor, "POST", f"{requests_at(processor)}/?"), spec.ERROR_STATUS)
    assert error.message is not None and named in error.message
    assert error.errors and error.errors[0].domain == "Validation"
    assert processor.subject_request(document["subject_request_id"]) is None


def test_regulation_is_required_by_2_0_and_unknown_to_opengdpr_1_0(
        processor: OpenDsrEmulator) -> None:
    document = valid(processor)
    if dialect_of(processor) is spec.OPENDSR:
        document.pop("regulation")
    else:
        document["regulation"] = "gdpr"
    requests.post(f"{processor.url}{requests_at(processor)}", json=document, timeout=scaled(5))
    error = refusal(last(processor, "POST", f"{requests_at(processor)}/?"), spec.ERROR_STATUS)
    assert error.message is not None and "regulation" in error.message


def test_a_request_that_is_not_json_is_refused_with_the_error_object(
        processor: OpenDsrEmulator) -> None:
    requests.post(f"{processor.url}{requests_at(processor)}", data=b"subject=erasure",
                  headers={"Content-Type": "text/plain"}, timeout=scaled(5))
    error = refusal(last(processor, "POST", f"{requests_at(processor)}/?"), spec.ERROR_STATUS)
    assert error.message is not None and "Content-Type" in error.message
