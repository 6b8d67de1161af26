"""The OpenDSR contract tests' processors (one speaking 2.0 and OpenGDPR's names, one
speaking only OpenGDPR 1.0), privasync's connector for each, and a stand-in for the
callback endpoint. Every answer a processor serves is kept (``OpenDsrEmulator.answers``)
so each test holds it against ``privasync.emulators.contracts.opendsr``."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from connectors.partner import OpenDsrConnector
from core.mappings import Partner
from core.model import PersonAt
from privasync.emulators.opendsr import OpenDsrEmulator
from tests.emulators.conftest import Sink, serve
from tests.timing import scaled

CALLBACKS = "/webhooks/partners/processor/opendsr"
CONTROLLER = "3622"


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    yield from serve(Sink())


@pytest.fixture(scope="module")
def current() -> Iterator[OpenDsrEmulator]:
    yield from serve(OpenDsrEmulator(controller_id=CONTROLLER, key_type="p256"))


@pytest.fixture(scope="module")
def legacy() -> Iterator[OpenDsrEmulator]:
    yield from serve(OpenDsrEmulator(controller_id=CONTROLLER, legacy_only=True))


@pytest.fixture(params=["current", "legacy"])
def processor(request: pytest.FixtureRequest) -> OpenDsrEmulator:
    """Each contract test runs against both: §10.1 keeps OpenGDPR's names valid."""
    emulator: OpenDsrEmulator = request.getfixturevalue(request.param)
    emulator.clear_faults()
    return emulator


@pytest.fixture
def connect(sink: Sink) -> Callable[[OpenDsrEmulator], OpenDsrConnector]:
    def build(processor: OpenDsrEmulator) -> OpenDsrConnector:
        partner = Partner(protocol="opendsr", url=processor.url, controller_id=CONTROLLER,
                          certificate_setting="PROCESSOR_CERTIFICATE", purposes=("offers",),
                          agreement="DPA-1", identifiers=("email",))
        return OpenDsrConnector(name="processor", partner=partner, url=processor.url,
                                callback_url=f"{sink.url}{CALLBACKS}",
                                certificate_pem=processor.certificate_pem, timeout=scaled(5))
    return build


def someone(tag: str) -> PersonAt:
    return PersonAt(subject_id=tag, request_id=str(uuid.uuid4()),
                    emails=(f"{tag}@example.com",))
