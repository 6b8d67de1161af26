"""The HubSpot emulator the HubSpot connector tests share, and the mapping they read.

Tests import the constants from here: `from tests.connectors.hubspot.conftest import TOKEN`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from core.mappings import SystemMapping
from privasync.emulators.hubspot import HubSpotEmulator
from tests.emulators.conftest import serve

TOKEN = "pat-test"
MAPPING = SystemMapping.model_validate(
    yaml.safe_load((Path(__file__).parents[3] / "mappings" / "hubspot.yaml").read_text()))


@pytest.fixture(scope="module")
def server() -> Iterator[HubSpotEmulator]:
    yield from serve(HubSpotEmulator(access_token=TOKEN))


@pytest.fixture
def hub(server: HubSpotEmulator) -> HubSpotEmulator:
    server.reset()
    return server
