"""Salesforce failures reach the core as privasync's errors, translated once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests
import responses

from connectors.salesforce import SalesforceConnector
from core.errors import AuthError, ConfigError, PermanentError, TransientError
from core.model import Channel, ConsentState, ConsentStatus, DestinationSubject
from privasync.emulators.http import Fault
from privasync.emulators.salesforce import SalesforceEmulator
from tests.connectors.salesforce.conftest import LIMIT_BODY, MAPPING


def connect(url: str, session_id: str = "00Demulator!session",
            timeout: float = 10.0) -> SalesforceConnector:
    return SalesforceConnector(instance_url=url, session_id=session_id, mapping=MAPPING,
                               timeout=timeout)


def withdrawal(record_id: str) -> DestinationSubject:
    state = ConsentState("offers", Channel.EMAIL, ConsentStatus.WITHDRAWN,
                         datetime(2024, 1, 2, tzinfo=UTC), "test")
    return DestinationSubject("s1", "ada@example.com", (f"Contact:{record_id}",), (state,))


def test_an_http_instance_url_reaches_the_emulator(emulator):
    connector = connect(emulator.url)

    connector.check()

    assert emulator.url.startswith("http://")
    assert emulator.total_calls("/services/data/v59.0/limits") == 1


def test_the_daily_api_limit_becomes_a_transient_error_with_a_retry_hint():
    emu = SalesforceEmulator(api_limit=6)  # check: limits and four describes
    emu.start()
    try:
        connector = connect(emu.url)
        connector.check()
        with pytest.raises(TransientError) as caught:
            connector.poll(None, datetime.now(UTC))
    finally:
        emu.stop()

    assert caught.value.error_class == "request_limit_exceeded"
    assert caught.value.retry_after is not None and caught.value.retry_after > 0


def test_a_server_error_becomes_a_transient_error(emulator):
    emulator.inject(Fault(500, [{"errorCode": "UNKNOWN_EXCEPTION", "message": "boom"}]))

    with pytest.raises(TransientError) as caught:
        connect(emulator.url).apply_consent([withdrawal(emulator.create_contact("a@x.org"))])

    assert caught.value.error_class == "http_500"


def test_a_single_503_is_absorbed_by_the_blip_retry(emulator):
    contact = emulator.create_contact("ada@example.com")
    emulator.inject(Fault(503, [{"errorCode": "SERVER_UNAVAILABLE", "message": "busy"}]))

    [outcome] = connect(emulator.url).apply_consent([withdrawal(contact)])

    assert outcome.error is None
    assert emulator.record(contact)["HasOptedOutOfEmail"] is True


def test_a_bad_session_becomes_an_auth_error(emulator):
    with pytest.raises(AuthError) as caught:
        connect(emulator.url, session_id="00Dstale!session").check()

    assert caught.value.error_class == "invalid_session_id"


def test_a_refused_request_other_than_the_limit_is_an_auth_error(emulator):
    emulator.inject(Fault(403, [{"errorCode": "INSUFFICIENT_ACCESS", "message": "no"}]))

    with pytest.raises(AuthError) as caught:
        connect(emulator.url).poll(None, datetime.now(UTC))

    assert caught.value.error_class == "insufficient_access"


def test_a_malformed_request_is_a_permanent_error_that_names_no_data(emulator):
    emulator.inject(Fault(400, [{"errorCode": "JSON_PARSER_ERROR", "message": "ada@example.com"}],
                          path_pattern="composite"))

    with pytest.raises(PermanentError) as caught:
        connect(emulator.url).apply_consent([withdrawal(emulator.create_contact("a@x.org"))])

    assert type(caught.value) is PermanentError
    assert caught.value.error_class == "json_parser_error"
    assert "ada@" not in str(caught.value)
    assert isinstance(caught.value.__cause__, Exception)


def test_a_hung_server_becomes_a_transient_network_error(emulator):
    emulator.inject(*[Fault(200, delay_seconds=0.5) for _ in range(3)])

    with pytest.raises(TransientError) as caught:
        connect(emulator.url, timeout=0.1).check()

    assert caught.value.error_class == "network"


def test_a_poll_needs_an_aware_now(emulator):
    with pytest.raises(Exception, match="timezone"):
        connect(emulator.url).poll(None, datetime.now(UTC).replace(tzinfo=None))


def test_a_connector_without_credentials_refuses_to_start():
    with pytest.raises(ConfigError):
        SalesforceConnector(instance_url="https://acme.my.salesforce.com", mapping=MAPPING,
                            username="ops@acme.example")


@responses.activate
def test_an_https_instance_is_called_over_https_and_connection_errors_are_transient():
    base = "https://acme.my.salesforce.com/services/data/v59.0/"
    responses.add(responses.GET, "https://acme.my.salesforce.com/services/data/",
                  json=[{"label": "Winter '24", "url": "/services/data/v59.0", "version": "59.0"}])
    responses.add(responses.GET, base + "limits/",
                  json={"DailyApiRequests": {"Max": 100, "Remaining": 0}})
    responses.add(responses.GET, base + "limits/", json=LIMIT_BODY, status=403)
    connector = connect("https://acme.my.salesforce.com")

    with pytest.raises(TransientError) as used_up:
        connector.check()
    with pytest.raises(TransientError) as refused:
        connector.check()
    responses.replace(responses.GET, base + "limits/", body=requests.ConnectionError("reset"))
    with pytest.raises(TransientError) as unreachable:
        connector.check()

    assert used_up.value.error_class == refused.value.error_class == "request_limit_exceeded"
    assert refused.value.retry_after == pytest.approx(timedelta(minutes=15).total_seconds())
    assert unreachable.value.error_class == "network"
    # each check reads the version list first; a connection blip is retried three times in all
    assert len(responses.calls) == 3 + 2 + 3
