"""hubspot-api-client calls with privasync's timeout, retry layers and error table.

One client per connector. Its urllib3 retries are kept to connection attempts (nothing
was sent yet); a bare 502/503 is absorbed by the shared blip retry; anything longer is
the worker's business. Every call goes through ``HubSpotSdk.send``, so none can go out
without a timeout or a slot of the shared rate window, or come back as an untranslated
exception. Each generated package of
the client has its own ApiException class, so every package used here is listed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import urllib3
from hubspot import HubSpot
from hubspot.crm.associations.v4.exceptions import ApiException as AssociationsApiException
from hubspot.crm.contacts.exceptions import ApiException as ContactsApiException
from hubspot.crm.objects.calls.exceptions import ApiException as CallsApiException
from hubspot.crm.objects.emails.exceptions import ApiException as EmailsApiException
from hubspot.crm.objects.meetings.exceptions import ApiException as MeetingsApiException
from hubspot.crm.objects.notes.exceptions import ApiException as NotesApiException
from hubspot.crm.objects.tasks.exceptions import ApiException as TasksApiException
from hubspot.crm.properties.exceptions import ApiException as PropertiesApiException
from urllib3.util.retry import Retry

from connectors.hubspot.errors import HUBSPOT
from connectors.hubspot.limits import observed
from connectors.ratelimits import Window
from connectors.transport import blip_retry, error_for_network

_API_ERRORS = (ContactsApiException, PropertiesApiException, AssociationsApiException,
               CallsApiException, EmailsApiException, MeetingsApiException,
               NotesApiException, TasksApiException)


@dataclass(frozen=True)
class Answer:
    """What one call returned: HTTP status, headers and the client's model (if any)."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    data: Any = None

    @property
    def correlation_id(self) -> str | None:
        """HubSpot's id for the call, the one its support asks for."""
        return {k.lower(): v for k, v in self.headers.items()}.get("x-hubspot-correlation-id")


class HubSpotSdk:
    """The official client plus the one way privasync calls it."""

    def __init__(self, *, base_url: str, access_token: str, timeout: float,
                 window: Window) -> None:
        retry = Retry(total=2, connect=2, read=0, status=0, other=0, redirect=0,
                      backoff_factor=0.1, raise_on_status=False)
        self.client = HubSpot(access_token=access_token, host=base_url.rstrip("/"), retry=retry)
        self._timeout = timeout
        self.window = window

    def send(self, what: str, method: Callable[..., Any], *args: Any,
             tolerated: Collection[int] = (), patience: float = 0.0, **kwargs: Any) -> Answer:
        """Call a client ``*_with_http_info`` method with the timeout set, in a slot of the
        rate window (waiting ``patience`` seconds at most for one).

        A status in ``tolerated`` comes back as an Answer (a 404 that means "already
        gone"); any other failure raises DeliveryError, named by ``what``, never by data;
        a full window raises Throttled before anything is sent.
        """
        try:
            return self._once(what, method, args, kwargs, tolerated, patience)
        except urllib3.exceptions.HTTPError as exc:
            raise error_for_network(exc, what) from exc

    @blip_retry
    def _once(self, what: str, method: Callable[..., Any], args: tuple[Any, ...],
              kwargs: dict[str, Any], tolerated: Collection[int], patience: float) -> Answer:
        with self.window.slot(patience=patience) as call:
            try:
                data, status, headers = method(*args, _request_timeout=self._timeout, **kwargs)
            except _API_ERRORS as exc:
                status = getattr(exc, "status", None)
                if not isinstance(status, int) or status <= 0:  # an SSLError the client wrapped
                    raise error_for_network(exc, what) from exc
                call.observe(observed(status, getattr(exc, "headers", None)))
                if status in tolerated:
                    return Answer(status, dict(getattr(exc, "headers", None) or {}))
                raise HUBSPOT.error(status, what, headers=getattr(exc, "headers", None),
                                    body=getattr(exc, "body", None)) from exc
            call.observe(observed(int(status), headers))
        return Answer(int(status), dict(headers or {}), data)
