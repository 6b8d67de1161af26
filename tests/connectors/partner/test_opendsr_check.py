"""``privasync check`` on an OpenDSR processor names everything that keeps it from working:
discovery, its version, the request type and identities we send, the pinned certificate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.partner import OpenDsrConnector
from connectors.plugin import Connection
from core.errors import PermanentError
from privasync.app.system_checks import _try
from privasync.emulators.opendsr import OpenDsrEmulator
from tests.connectors.partner.test_opendsr import connector, policy
from tests.emulators.conftest import Sink, started
from tests.timing import scaled


def test_a_processor_offering_what_we_need_passes(sink: Sink) -> None:
    with started(OpenDsrEmulator(controller_id="3622")) as processor:
        connector(processor, sink).check()
        checked = _try("partner:analytics", lambda: Connection(connector(processor, sink)),
                       "reachable")
        assert (checked.ok, checked.detail) == (True, "reachable")


def test_each_missing_capability_of_discovery_is_named_at_once(sink: Sink) -> None:
    lacking = OpenDsrEmulator(controller_id="3622", request_types=("access",),
                              identities=("controller_customer_id",), api_version="3.0")
    with started(lacking) as processor:
        with pytest.raises(PermanentError) as refused:
            connector(processor, sink).check()
        assert refused.value.error_class == "opendsr_discovery"
        for named in ("api_version 2.x", "subject_request_type erasure", "identity email/raw"):
            assert named in str(refused.value)
        checked = _try("partner:analytics", lambda: Connection(connector(processor, sink)),
                       "reachable")
        assert checked.ok is False
        assert "ask the processor to support what is named" in checked.detail


def test_without_the_email_identifier_only_our_subject_id_must_be_supported(
        sink: Sink) -> None:
    with started(OpenDsrEmulator(controller_id="3622",
                                 identities=("controller_customer_id",))) as processor:
        connector(processor, sink, identifiers=()).check()


def test_an_expired_or_rotated_certificate_is_named(sink: Sink) -> None:
    now = datetime.now(UTC)
    expired = OpenDsrEmulator(controller_id="3622", valid_from=now - timedelta(days=30),
                              valid_until=now - timedelta(days=1))
    with started(expired) as processor, started(OpenDsrEmulator()) as other:
        with pytest.raises(PermanentError, match="expired or not yet valid") as refused:
            connector(processor, sink).check()
        assert refused.value.error_class == "opendsr_certificate"
        with pytest.raises(PermanentError, match="not the pinned one"):
            connector(processor, sink, pinned=other.certificate_pem).check()
        checked = _try("partner:analytics", lambda: Connection(connector(processor, sink)),
                       "reachable")
        assert "pin the processor's current CA-issued certificate" in checked.detail


def test_a_processor_serving_no_discovery_is_named(sink: Sink) -> None:
    with started(OpenDsrEmulator(controller_id="3622")) as processor:
        nowhere = OpenDsrConnector(name="analytics", partner=policy(), url=sink.url,
                                   callback_url=f"{sink.url}/cb",
                                   certificate_pem=processor.certificate_pem, timeout=scaled(5))
        with pytest.raises(PermanentError, match="neither /v2/discovery nor OpenGDPR's") \
                as refused:
            nowhere.check()  # the sink serves no GET at all: 404 for both
    assert refused.value.error_class == "opendsr_discovery"
