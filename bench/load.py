"""Signed HubSpot webhook batches, posted from client processes.

The clients run in their own processes (spawned, not forked: the parent runs
threads) so that building and sending requests does not take the GIL from the
server under test, which shares its process with the worker and the emulators.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import queue
import time
from dataclasses import dataclass, field
from typing import Any

from hubspot.utils.signature import Signature

Signed = tuple[bytes, dict[str, str]]


def optout_event(contact: int, event_id: int, occurred_ms: int) -> dict[str, Any]:
    """``hs_email_optout`` set to ``"true"`` in the CRM, as HubSpot sends it."""
    return property_event(contact, event_id, occurred_ms, "hs_email_optout", "true")


def property_event(contact: int, event_id: int, occurred_ms: int, name: str,
                   value: str) -> dict[str, Any]:
    """A ``contact.propertyChange``: an opt-out switch (``hs_email_optout``,
    ``hs_email_optout_<subscription>``: ``"true"`` or ``"false"``) or a record's field."""
    return {"eventId": event_id, "subscriptionId": 2004, "portalId": 62515, "appId": 54321,
            "occurredAt": occurred_ms, "subscriptionType": "contact.propertyChange",
            "attemptNumber": 0, "objectId": contact, "propertyName": name,
            "propertyValue": value, "changeSource": "CRM_UI"}


def creation_event(contact: int, event_id: int, occurred_ms: int) -> dict[str, Any]:
    """A ``contact.creation``, as the HubSpot emulator (and HubSpot) sends it."""
    return {"eventId": event_id, "subscriptionId": 2001, "portalId": 62515, "appId": 54321,
            "occurredAt": occurred_ms, "subscriptionType": "contact.creation",
            "attemptNumber": 0, "objectId": contact, "changeSource": "CRM_UI",
            "changeFlag": "NEW"}


def sign(url: str, secret: str, events: list[dict[str, Any]]) -> Signed:
    body = json.dumps(events, separators=(",", ":")).encode()
    stamp = str(int(time.time() * 1000))
    signature = Signature.get_signature(client_secret=secret, request_body=body.decode(),
                                        signature_version="v3", http_uri=url,
                                        http_method="POST", timestamp=stamp)
    return body, {"Content-Type": "application/json", "X-HubSpot-Signature-v3": signature,
                  "X-HubSpot-Signature-Version": "v3", "X-HubSpot-Request-Timestamp": stamp}


@dataclass
class Posted:
    """What the clients saw: per batch (HTTP status, events accepted, jobs, seconds)."""

    started: float = 0.0
    finished: float = 0.0
    batches: list[tuple[int, int, int, float]] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return max(1e-9, self.finished - self.started)


def _client(url: str, items: list[Signed], barrier: Any, out: Any) -> None:
    import requests

    results: list[tuple[int, int, int, float]] = []
    with requests.Session() as session:
        barrier.wait(timeout=120)
        started = time.monotonic()
        for body, headers in items:
            sent = time.monotonic()
            try:
                answer = session.post(url, data=body, headers=headers, timeout=60)
                status = answer.status_code
                data = answer.json() if status == 200 else {}
            except (requests.RequestException, ValueError):
                status, data = 0, {}
            results.append((status, int(data.get("accepted", 0)), int(data.get("jobs", 0)),
                            time.monotonic() - sent))
        out.put((started, time.monotonic(), results))


def post_all(url: str, items: list[Signed], clients: int, timeout: float = 240.0) -> Posted:
    """Post every item, spread over ``clients`` processes that start together.

    ``time.monotonic`` is system-wide on Linux, so the processes' clocks compare.
    """
    ctx = mp.get_context("spawn")
    clients = max(1, min(clients, len(items)))
    barrier, out = ctx.Barrier(clients), ctx.Queue()
    procs = [ctx.Process(target=_client, args=(url, items[i::clients], barrier, out),
                         name=f"bench-client-{i}", daemon=True) for i in range(clients)]
    for proc in procs:
        proc.start()
    posted = Posted(started=float("inf"))
    deadline = time.monotonic() + timeout
    try:
        for _ in procs:
            started, finished, results = out.get(timeout=max(1.0, deadline - time.monotonic()))
            posted.started = min(posted.started, started)
            posted.finished = max(posted.finished, finished)
            posted.batches.extend(results)
    except queue.Empty:
        posted.finished = time.monotonic()
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
    return posted
