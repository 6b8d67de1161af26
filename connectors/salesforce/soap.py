"""``emptyRecycleBin()`` over the SOAP API: the one call privasync makes outside REST.

simple-salesforce has no method for it, so the envelope is posted as raw HTTP through
the client's own requests session (the same TimeoutSession, so the same timeout and
http-for-emulators rule) to ``/services/Soap/u/{version}``, the session id in the
``SessionHeader`` (SOAP API Developer Guide, "emptyRecycleBin()": at most 200 ids, v10.0+;
"EmptyRecycleBinResult": one result per id, in the ids' order, with ``id``, ``success``
and ``errors``; partner WSDL namespace ``urn:partner.soap.sforce.com``). A fault
(HTTP 500, ``faultcode`` ``sf:<ExceptionCode>``) fails the whole call.
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from core.errors import AuthError, DeliveryError, PermanentError, TransientError

EMPTY_RECYCLE_BIN_LIMIT = 200
_PARTNER = "urn:partner.soap.sforce.com"
_SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
# Fault codes (the API's ExceptionCode) that another try later may get past.
_TRANSIENT_FAULTS = frozenset({"REQUEST_LIMIT_EXCEEDED", "SERVER_UNAVAILABLE"})
_AUTH_FAULTS = frozenset({"INVALID_SESSION_ID", "INSUFFICIENT_ACCESS"})
WHAT = "soap emptyRecycleBin"


def envelope(session_id: str, ids: Sequence[str]) -> str:
    """The request body: the session header and one ``ids`` element per id."""
    items = "".join(f"<urn:ids>{escape(i)}</urn:ids>" for i in ids)
    return ('<?xml version="1.0" encoding="utf-8"?>'
            f'<soapenv:Envelope xmlns:soapenv="{_SOAP}" xmlns:urn="{_PARTNER}">'
            "<soapenv:Header><urn:SessionHeader>"
            f"<urn:sessionId>{escape(session_id)}</urn:sessionId>"
            "</urn:SessionHeader></soapenv:Header>"
            f"<soapenv:Body><urn:emptyRecycleBin>{items}</urn:emptyRecycleBin></soapenv:Body>"
            "</soapenv:Envelope>")


def results(status: int, body: bytes, sent: int) -> list[str | None]:
    """Per id, by position, the statusCode Salesforce refused to purge it with, or None.
    Raises our error for a fault or an answer that does not match the ids sent."""
    try:
        # Our own Salesforce's answer; expat refuses external entities (Python >= 3.7.1).
        root = ElementTree.fromstring(body)  # noqa: S314
    except ElementTree.ParseError:
        raise _unexpected(status) from None
    fault = root.find(f".//{{{_SOAP}}}Fault")
    if fault is not None:
        # SOAP 1.1 leaves faultcode unqualified, but a default namespace may claim it.
        code = next((e.text or "" for e in fault if e.tag.rpartition("}")[2] == "faultcode"),
                    "")
        raise _fault(code)
    if status != 200:
        raise _unexpected(status)
    found = root.findall(f".//{{{_PARTNER}}}result")
    if len(found) != sent:
        raise PermanentError(f"{WHAT}: answer does not match the ids sent",
                             error_class="unexpected_answer")
    return [None if r.findtext(f"{{{_PARTNER}}}success") == "true"
            else r.findtext(f"{{{_PARTNER}}}errors/{{{_PARTNER}}}statusCode") or "unknown"
            for r in found]


def _fault(faultcode: str) -> DeliveryError:
    code = faultcode.rpartition(":")[2] or "soap_fault"
    message = f"{WHAT}: fault {code}"
    if code in _TRANSIENT_FAULTS:
        return TransientError(message, error_class=code.lower())
    if code in _AUTH_FAULTS:
        return AuthError(message, error_class=code.lower())
    return PermanentError(message, error_class=code.lower())


def _unexpected(status: int) -> DeliveryError:
    if status >= 500:
        return TransientError(f"{WHAT}: HTTP {status}", error_class=f"http_{status}")
    return PermanentError(f"{WHAT}: HTTP {status} unexpected answer",
                          error_class="salesforce_bad_response")
