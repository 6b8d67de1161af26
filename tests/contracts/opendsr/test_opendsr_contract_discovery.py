"""§6 discovery, as privasync's check reads it, holds to its contract in both dialects."""

from __future__ import annotations

from collections.abc import Callable

import requests

from connectors.partner import OpenDsrConnector
from privasync.emulators.contracts import opendsr as spec
from privasync.emulators.opendsr import OpenDsrEmulator
from tests.contracts.opendsr.answers import dialect_of, holds, last, refusal
from tests.timing import scaled


def test_discovery_read_by_check_holds_to_its_contract(
        processor: OpenDsrEmulator, connect: Callable[[OpenDsrEmulator], OpenDsrConnector]
) -> None:
    connect(processor).check()
    dialect = dialect_of(processor)
    discovery = holds(last(processor, "GET", f"{dialect.version_path}/discovery/?"), 200,
                      spec.Discovery)
    assert discovery.api_version == dialect.api_version
    assert "erasure" in discovery.supported_subject_request_types
    assert spec.SupportedIdentity(identity_type="email", identity_format="raw") in \
        discovery.supported_identities
    published = requests.get(discovery.processor_certificate, timeout=scaled(5))
    assert published.status_code == 200
    assert published.text == processor.certificate_pem


def test_an_opengdpr_only_processor_has_no_v2_discovery_and_says_so_in_the_error_shape(
        legacy: OpenDsrEmulator, connect: Callable[[OpenDsrEmulator], OpenDsrConnector]
) -> None:
    connect(legacy).check()
    refusal(last(legacy, "GET", "/v2/discovery"), spec.UNKNOWN_STATUS)
    holds(last(legacy, "GET", "/v1/discovery/?"), 200, spec.Discovery)
