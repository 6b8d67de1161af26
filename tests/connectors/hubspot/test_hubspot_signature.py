"""Our stdlib v3 check agrees with hubspot-api-client's Signature helper, and is stricter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hubspot.utils.signature import Signature

from connectors.hubspot import HubSpotConnector
from connectors.hubspot.signature import decode_uri
from core.errors import Unauthenticated
from core.mappings import SystemMapping

SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
BODY = (b'[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,'
        b'"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,'
        b'"changeSource":"CRM","changeFlag":"NEW","appId":54321}]')


def connector(secret: str | None = SECRET) -> HubSpotConnector:
    return HubSpotConnector(base_url="http://127.0.0.1:9", access_token="pat",
                            client_secret=secret, mapping=SystemMapping(system="hubspot"))


def stamp(when: datetime = NOW) -> str:
    return str(int(when.timestamp() * 1000))


def signed(url: str, body: bytes, when: datetime = NOW, secret: str = SECRET,
           method: str = "POST") -> dict[str, str]:
    """Headers as HubSpot sends them, the signature made by the official library."""
    ts = stamp(when)
    signature = Signature.get_signature(secret, body.decode(), "v3", http_uri=decode_uri(url),
                                        http_method=method, timestamp=ts)
    return {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": ts,
            "X-HubSpot-Signature-Version": "v1", "X-HubSpot-Signature": "legacy"}


def verify(url: str, body: bytes, headers: dict[str, str], now: datetime = NOW,
           secret: str | None = SECRET, method: str = "POST") -> None:
    connector(secret).verify_signature(method=method, url=url, body=body, headers=headers,
                                       now=now)


@pytest.mark.parametrize(("url", "body"), [
    ("https://hooks.example.com/hubspot", BODY),
    ("https://hooks.example.com/hubspot?x=1&portal=62515", BODY),
    ("https://hooks.example.com/hubspot", b"[]"),
    ("https://hooks.example.com/h/%C3%A9t%C3%A9?q=%E2%9C%93", '[{"n":"é✓"}]'.encode()),
])
def test_a_request_signed_like_the_library_does_is_accepted(url: str, body: bytes) -> None:
    verify(url, body, signed(url, body))


def test_percent_encoded_reserved_characters_are_decoded_before_hashing() -> None:
    sent = "https://hooks.example.com/hubspot%3Fa%3D1%40b%2Cc%3Bd%2f%20"
    hashed = "https://hooks.example.com/hubspot?a%3D1@b,c;d/%20"  # %3D and %20 are not listed
    ts = stamp()
    headers = {"X-HubSpot-Request-Timestamp": ts, "X-HubSpot-Signature-v3": Signature.get_signature(
        SECRET, BODY.decode(), "v3", http_uri=hashed, http_method="POST", timestamp=ts)}
    verify(sent, BODY, headers)
    assert decode_uri(sent) == hashed


def test_header_names_are_matched_case_insensitively() -> None:
    url = "https://hooks.example.com/hubspot"
    verify(url, BODY, {k.lower(): v for k, v in signed(url, BODY).items()})


def test_the_method_is_part_of_the_signature() -> None:
    url = "https://hooks.example.com/hubspot"
    verify(url, b"", signed(url, b"", method="GET"), method="GET")
    with pytest.raises(Unauthenticated):
        verify(url, b"", signed(url, b"", method="GET"), method="POST")


@pytest.mark.parametrize(("case", "change"), [
    ("tampered body", {"body": BODY.replace(b"123", b"124")}),
    ("other query string", {"url": "https://hooks.example.com/hubspot?x=2"}),
    ("wrong secret", {"secret": "another-secret"}),
])
def test_a_signature_that_does_not_match_is_refused(case: str, change: dict[str, object]) -> None:
    url = "https://hooks.example.com/hubspot?x=1"
    headers = signed(url, BODY)
    args: dict[str, object] = {"url": url, "body": BODY, "headers": headers, "secret": SECRET}
    with pytest.raises(Unauthenticated, match="does not match") as caught:
        verify(**(args | change))  # type: ignore[arg-type]
    assert SECRET not in str(caught.value) and "eventId" not in str(caught.value)


@pytest.mark.parametrize(("sent", "reason"), [
    (NOW - timedelta(minutes=5, seconds=1), "more than 5 minutes old"),
    (NOW + timedelta(minutes=5, seconds=1), "in the future"),
])
def test_a_stale_or_future_timestamp_is_refused_even_when_signed(sent: datetime,
                                                                 reason: str) -> None:
    url = "https://hooks.example.com/hubspot"
    with pytest.raises(Unauthenticated, match=reason):
        verify(url, BODY, signed(url, BODY, when=sent))


def test_a_timestamp_within_five_minutes_either_way_is_accepted() -> None:
    url = "https://hooks.example.com/hubspot"
    for skew in (timedelta(minutes=-4, seconds=-59), timedelta(minutes=4, seconds=59)):
        verify(url, BODY, signed(url, BODY, when=NOW + skew))


@pytest.mark.parametrize(("drop", "reason"), [
    ("X-HubSpot-Signature-v3", "missing X-HubSpot-Signature-v3"),
    ("X-HubSpot-Request-Timestamp", "missing X-HubSpot-Request-Timestamp"),
])
def test_missing_headers_are_refused(drop: str, reason: str) -> None:
    url = "https://hooks.example.com/hubspot"
    headers = {k: v for k, v in signed(url, BODY).items() if k != drop}
    with pytest.raises(Unauthenticated, match=reason):
        verify(url, BODY, headers)


def test_a_request_with_only_a_legacy_v1_signature_is_refused() -> None:
    v1 = Signature.get_signature(SECRET, BODY.decode(), "v1")
    assert v1 == "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
    with pytest.raises(Unauthenticated, match="only v3"):
        verify("https://x.example/h", BODY, {"X-HubSpot-Signature": v1,
                                             "X-HubSpot-Signature-Version": "v1"})


def test_a_timestamp_that_is_not_an_integer_is_refused() -> None:
    url = "https://hooks.example.com/hubspot"
    headers = signed(url, BODY) | {"X-HubSpot-Request-Timestamp": "1.7e12"}
    with pytest.raises(Unauthenticated, match="not an integer"):
        verify(url, BODY, headers)


def test_without_a_configured_secret_nothing_is_accepted() -> None:
    url = "https://hooks.example.com/hubspot"
    with pytest.raises(Unauthenticated, match="no HubSpot client secret"):
        verify(url, BODY, signed(url, BODY), secret=None)


def test_the_library_v2_vector_still_holds() -> None:
    """Sanity check of the reference implementation we test against."""
    assert Signature.get_signature(SECRET, "", "v2", http_uri="https://www.example.com/webhook_uri",
                                   http_method="GET") == (
        "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e")


def test_legacy_signatures_match_hubspots_published_vectors() -> None:
    """VENDOR_APIS.md A1: HubSpot's own v1 and v2 test vectors."""
    from connectors.hubspot.signature import expected_legacy

    secret = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
    v1_body = (b'[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":'
               b'1564113600000,"subscriptionType":"contact.creation","attemptNumber":0,'
               b'"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321}]')
    assert expected_legacy(secret, "v1", "POST", "", v1_body) == (
        "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de")
    assert expected_legacy(secret, "v2", "GET", "https://www.example.com/webhook_uri",
                           b"") == ("eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e"
                                    "88823087200e")
