"""The Mailchimp emulator the Mailchimp connector tests share, its list, and their helpers.

Tests import the plain helpers and constants from here:
`from tests.connectors.mailchimp.conftest import KEY, LIST`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from connectors.mailchimp import MailchimpConnector
from core.crypto import Keyring
from core.mappings import SystemConsent, SystemMapping
from privasync.emulators.http import Emulator, Request, Response
from privasync.emulators.mailchimp import MailchimpEmulator
from tests.emulators.conftest import serve
from tests.timing import scaled

KEY = "emulatorkey-us6"
# The installation's keyring: what the connector stores about members is keyed under it.
KEYS = Keyring(b"test-secret-key-0123456789abcdef", [b"test-key-encryption-key-01234567"])
LIST = "a6b5da1054"
# The list covers two purposes and maps no merge field...
CONSENT_ONLY = SystemMapping(system="mailchimp",
                             consent=SystemConsent(all_email=("product_news", "offers")))
# ...or maps the merge fields of mappings/mailchimp.yaml.
WITH_FIELDS = SystemMapping.model_validate(
    yaml.safe_load((Path(__file__).parents[3] / "mappings" / "mailchimp.yaml").read_text()))


@pytest.fixture(scope="module")
def running() -> Iterator[MailchimpEmulator]:
    yield from serve(MailchimpEmulator(api_key=KEY, list_id=LIST))


@pytest.fixture
def mc(running: MailchimpEmulator) -> MailchimpEmulator:
    running.reset()
    return running


def connect(mc: MailchimpEmulator, mapping: SystemMapping) -> MailchimpConnector:
    """A connector to the emulator's list, reading it through `mapping`."""
    return MailchimpConnector(base_url=f"{mc.url}/3.0", api_key=KEY, list_id=LIST,
                              mapping=mapping, keys=KEYS, timeout=scaled(5))


@contextmanager
def webhook_endpoint() -> Iterator[tuple[str, list[bytes]]]:
    """A webhook receiver for the emulator to validate and post to, up while the block runs:
    yields its URL and the list that collects each posted body."""
    bodies: list[bytes] = []

    def receive(request: Request, match: object) -> Response:
        bodies.append(request.body)
        return Response(200)

    hook = Emulator()
    hook.route("GET", "/hook", lambda request, match: Response(200))
    hook.route("POST", "/hook", receive)
    hook.start()
    try:
        yield f"{hook.url}/hook", bodies
    finally:
        hook.stop()
