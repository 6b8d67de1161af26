"""The one SOAP call the emulator answers: ``emptyRecycleBin()`` (SOAP API Developer Guide,
"emptyRecycleBin()" and "EmptyRecycleBinResult", v10.0+; partner WSDL namespace
``urn:partner.soap.sforce.com``), posted to ``/services/Soap/u/{version}`` with the session
in the ``SessionHeader``. simple-salesforce has no method for it, so a client posts the
envelope itself.

Only the elements the call needs are read (by pattern, not a full XML parser: the
envelope is ours to check, not to trust); anything else is answered with a SOAP fault,
status 500, as SOAP 1.1 faults are (assumption for the fault codes, which follow the
API's ``ExceptionCode`` names: INVALID_SESSION_ID, INVALID_OPERATION, LIMIT_EXCEEDED).
"""

from __future__ import annotations

import re
from xml.sax.saxutils import escape

_NS = r"(?:[\w-]+:)?"
_CALL = re.compile(rf"<{_NS}emptyRecycleBin[\s>]")
_IDS = re.compile(rf"<{_NS}ids>\s*([^<\s]*)\s*</{_NS}ids>")
_SESSION = re.compile(rf"<{_NS}sessionId>\s*([^<\s]+)\s*</{_NS}sessionId>")

Result = tuple[str, str | None, str]  # id, statusCode (None: success), message


def read(body: str) -> tuple[str | None, list[str] | None]:
    """The session id and the ids of an emptyRecycleBin envelope (ids None: another call)."""
    session = _SESSION.search(body)
    ids = _IDS.findall(body) if _CALL.search(body) else None
    return (session.group(1) if session else None), ids


def answer(results: list[Result]) -> str:
    """An ``emptyRecycleBinResponse``: one ``result`` per id, in the ids' order."""
    items = []
    for record_id, code, message in results:
        errors = ("" if code is None else
                  f"<errors><message>{escape(message)}</message>"
                  f"<statusCode>{code}</statusCode></errors>")
        items.append(f"<result>{errors}<id>{escape(record_id)}</id>"
                     f"<success>{'true' if code is None else 'false'}</success></result>")
    return _envelope("<emptyRecycleBinResponse>" + "".join(items)
                     + "</emptyRecycleBinResponse>")


def fault(code: str, message: str) -> str:
    return _envelope(f"<soapenv:Fault><faultcode>sf:{code}</faultcode>"
                     f"<faultstring>{code}: {escape(message)}</faultstring></soapenv:Fault>")


def _envelope(inner: str) -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns="urn:partner.soap.sforce.com" xmlns:sf="urn:fault.partner.soap.sforce.com">'
            f"<soapenv:Body>{inner}</soapenv:Body></soapenv:Envelope>")
