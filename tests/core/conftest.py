from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from api.taxonomy import data_categories
from core.crypto import Keyring
from core.identity import IdentityMap
from core.intake import Intake, Routes
from core.mappings import Mappings, load_mappings

MAPPINGS = Path(__file__).parents[2] / "mappings"
SYSTEMS = ("hubspot", "salesforce", "mailchimp")


@dataclass
class Core:
    intake: Intake
    identity: IdentityMap
    keyring: Keyring
    mappings: Mappings


@pytest.fixture
def core(engine) -> Core:  # type: ignore[no-untyped-def]
    keyring = Keyring(b"test-secret-key-0123456789abcdef")
    mappings = load_mappings(MAPPINGS, data_categories())
    identity = IdentityMap(keyring)
    intake = Intake(engine, identity, mappings, Routes.from_mappings(mappings, SYSTEMS))
    return Core(intake, identity, keyring, mappings)


def at(minute: int) -> datetime:
    return datetime(2026, 11, 1, 12, minute, tzinfo=UTC)
