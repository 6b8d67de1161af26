"""§8.5-§8.6: each callback the processor sends holds to its contract, under the headers of
the dialect the request came in, and privasync verifies and reads it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from connectors.partner import OpenDsrConnector
from privasync.emulators.contracts import opendsr as spec
from privasync.emulators.opendsr import OpenDsrEmulator
from tests.contracts.opendsr.answers import dialect_of
from tests.contracts.opendsr.conftest import CALLBACKS, someone
from tests.emulators.conftest import Delivery, Sink
from tests.timing import scaled


def delivered(sink: Sink, request_id: str, status: str) -> Delivery:
    """The callback for ``request_id`` in ``status``, waited for (5 s at most): a
    cancellation's callback comes after the 202."""
    deadline = time.monotonic() + scaled(5)
    while True:
        found = [d for d in sink.received(CALLBACKS)
                 if json.loads(d.body)["subject_request_id"] == request_id
                 and json.loads(d.body)["request_status"] == status]
        if found:
            return found[-1]
        assert time.monotonic() < deadline, f"no {status} callback"
        time.sleep(0.01)


@pytest.mark.parametrize("status", ["in_progress", "completed", "cancelled"])
def test_each_status_callback_holds_to_its_contract_and_privasync_reads_it(
        processor: OpenDsrEmulator, sink: Sink,
        connect: Callable[[OpenDsrEmulator], OpenDsrConnector], status: str) -> None:
    who = someone(f"cb-{status}")
    connector = connect(processor)
    connector.erase([who])
    if status == "cancelled":
        assert connector.cancel(who.request_id) is True
    else:
        processor.set_status(who.request_id, status)
    delivery = delivered(sink, who.request_id, status)
    body = spec.Callback.model_validate_json(delivery.body)
    assert (body.controller_id, body.status_callback_url, body.request_status) == (
        "3622", f"{sink.url}{CALLBACKS}", status)
    dialect = dialect_of(processor)
    headers = {k.lower(): v for k, v in delivery.headers.items()}
    assert headers[dialect.domain_header.lower()] == processor.domain
    assert dialect.signature_header.lower() in headers
    assert headers["content-type"] == "application/json"
    connector.verify_callback(delivery.headers, delivery.body, datetime.now(UTC))
    settled = connector.parse_callback(delivery.body, datetime.now(UTC))
    assert [a.completed for a in settled] == {"in_progress": [], "completed": [True],
                                              "cancelled": [False]}[status]
