"""The Salesforce contract tests' emulator, clients and answer checks.

Every call goes through simple-salesforce 1.12.10 where it has the call (query,
query_all, describe, updated/deleted, restful, limits); the version list, raw refusals
and the SOAP ``emptyRecycleBin()`` go through requests. Each answer is validated
against ``privasync.emulators.contracts.salesforce``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from pydantic import BaseModel, RootModel
from simple_salesforce import Salesforce

from connectors.salesforce.client import PlainHttpSession
from privasync.emulators.contracts.salesforce import ErrorBody, ErrorItem
from privasync.emulators.salesforce import SOAP, SalesforceEmulator
from tests.emulators.conftest import serve
from tests.timing import scaled


@pytest.fixture
def emulator() -> Iterator[SalesforceEmulator]:
    yield from serve(SalesforceEmulator(page_size=2))


def client(emu: SalesforceEmulator) -> Salesforce:
    return Salesforce(instance_url=emu.url, session_id=emu.session_id,
                      session=PlainHttpSession(5.0))


def holds(model: type[BaseModel] | type[RootModel[Any]], answer: Any) -> Any:
    """``answer``, once the contract has accepted it (raises ValidationError otherwise)."""
    model.model_validate(answer)
    return answer


def refusal(answer: requests.Response | Any) -> ErrorItem:
    """The first error of a refusal whose body holds to the contract's error shape."""
    body = answer.json() if isinstance(answer, requests.Response) else answer
    return ErrorBody.model_validate(body).root[0]


def empty_recycle_bin(emu: SalesforceEmulator, ids: list[str],
                      session_id: str | None = None) -> requests.Response:
    """``emptyRecycleBin(ids)`` as a SOAP client posts it (partner WSDL)."""
    items = "".join(f"<urn:ids>{i}</urn:ids>" for i in ids)
    envelope = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:urn="urn:partner.soap.sforce.com"><soapenv:Header><urn:SessionHeader>'
        f"<urn:sessionId>{session_id or emu.session_id}</urn:sessionId>"
        "</urn:SessionHeader></soapenv:Header><soapenv:Body><urn:emptyRecycleBin>"
        f"{items}</urn:emptyRecycleBin></soapenv:Body></soapenv:Envelope>")
    return requests.post(emu.url + SOAP, data=envelope.encode(), timeout=scaled(5),
                         headers={"Content-Type": "text/xml; charset=UTF-8",
                                  "SOAPAction": '""'})
