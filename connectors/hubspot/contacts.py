"""Reading contacts' e-mail addresses through hubspot-api-client's batch read.

The client's urllib3 retries are kept to connection attempts only (nothing was
sent yet); anything longer is the worker's business.
"""

from __future__ import annotations

from collections.abc import Sequence

import urllib3
from hubspot import HubSpot
from hubspot.crm.contacts import BatchReadInputSimplePublicObjectId
from hubspot.crm.contacts.exceptions import ApiException
from urllib3.util.retry import Retry

from connectors.hubspot.errors import http_error
from connectors.hubspot.events import SYSTEM
from connectors.transport import error_for_network
from core.model import SystemRef

READ_LIMIT = 100
_PREFIX = "contact:"
_WHAT = "hubspot contacts batch read"


class ContactReader:
    """Looks up e-mail addresses of HubSpot contacts, 100 per call."""

    def __init__(self, *, base_url: str, access_token: str, timeout: float) -> None:
        retry = Retry(total=2, connect=2, read=0, status=0, other=0, redirect=0,
                      backoff_factor=0.1, raise_on_status=False)
        client = HubSpot(access_token=access_token, host=base_url.rstrip("/"), retry=retry)
        self._batch_api = client.crm.contacts.batch_api
        self._timeout = timeout

    def emails(self, refs: Sequence[SystemRef]) -> dict[SystemRef, str]:
        """Addresses of the contacts found; unknown contacts and other systems are absent."""
        by_id: dict[str, list[SystemRef]] = {}
        for ref in refs:
            if ref.system == SYSTEM and ref.ref.startswith(_PREFIX):
                by_id.setdefault(ref.ref.removeprefix(_PREFIX), []).append(ref)
        ids = list(by_id)
        found: dict[SystemRef, str] = {}
        for start in range(0, len(ids), READ_LIMIT):
            for contact_id, email in self._read(ids[start:start + READ_LIMIT]).items():
                found |= {ref: email for ref in by_id.get(contact_id, [])}
        return found

    def _read(self, ids: list[str]) -> dict[str, str]:
        request = BatchReadInputSimplePublicObjectId(inputs=[{"id": i} for i in ids],
                                                     properties=["email"])
        try:
            response = self._batch_api.read(request, _request_timeout=self._timeout)
        except ApiException as exc:
            status = getattr(exc, "status", 0)
            if not isinstance(status, int) or status <= 0:
                raise error_for_network(exc, _WHAT) from exc
            raise http_error(status, getattr(exc, "headers", None), _WHAT) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise error_for_network(exc, _WHAT) from exc
        results = getattr(response, "results", None) or []
        return {str(c.id): str(c.properties["email"]) for c in results
                if (c.properties or {}).get("email")}
