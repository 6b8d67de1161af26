"""A connector is one plug-in (connectors/plugin.py) in one registry (privasync/app/plugins.py):
its connections are built, its webhook routes mounted and fed, without the app, the web
face or the command line naming it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from connectors.plugin import Connection, Context, Delivery, Intake, Plugin, Route
from core import codec, inbox
from core.db import inbox as inbox_table
from core.errors import Unauthenticated
from core.model import CanonicalEvent
from privasync.app import plugins
from tests.api.door import Door, open_door
from tests.conftest import make_database


class Echo:
    """A fifth connector that only receives: what it is sent, it stores."""

    name = "echo"

    def parse(self, body: bytes, received_at: datetime) -> list[CanonicalEvent]:
        return list(codec.decode(body))


def connect(_: None, ctx: Context) -> dict[str, object]:
    return {"echo": lambda: Connection(Echo(), destination=False, parser=Echo().parse)}


def routes(_: None, built: Mapping[str, Connection]) -> Sequence[Route]:
    def admit(params: Mapping[str, str]) -> None:
        if params["who"] != "friend":
            raise Unauthenticated("not a friend")

    def receive(intake: Intake, delivery: Delivery) -> inbox.Stored:
        assert "echo" in built
        with intake.serving():
            return intake.store("echo", delivery.body, delivery.now, 0)

    return [Route("/webhooks/echo/{who}", ("POST",), "echo", receive, admit=admit)]


ECHO: Plugin[None] = Plugin(name="echo", settings=None, connect=connect,
                            routes=routes)


@pytest.fixture
def echo_door(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(plugins, "PLUGINS", (*plugins.PLUGINS, ECHO))
    yield from open_door(make_database("sqlite", tmp_path), tmp_path)


def test_a_fifth_connector_is_built_mounted_and_fed_from_its_registration_alone(
        echo_door: Door) -> None:
    assert isinstance(echo_door.container.connector("echo"), Echo)
    assert "echo" not in echo_door.container.destinations  # it only receives
    answer = echo_door.client.post("/webhooks/echo/friend", content=b"[]",
                                   headers={"Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"accepted": 0, "duplicate": False}
    with echo_door.container.engine.connect() as conn:
        assert conn.execute(select(inbox_table.c.source)).scalars().all() == ["echo"]


def test_a_plugins_route_refuses_before_reading_and_stores_nothing(echo_door: Door) -> None:
    before = echo_door.rows()
    answer = echo_door.client.post("/webhooks/echo/stranger", content=b"[]",
                                   headers={"Content-Type": "application/json"})
    assert answer.status_code == 401
    assert answer.json()["error"] == "Unauthenticated"
    assert echo_door.rows() == before


def test_the_vendors_webhook_paths_come_from_their_plugins_unchanged(door: Door) -> None:
    paths = {getattr(r, "path", "") for r in door.client.app.routes}
    assert {p for p in paths if p.startswith("/webhooks")} == {
        "/webhooks/hubspot", "/webhooks/mailchimp/{token}",
        "/webhooks/partners/{name}/{kind:str}"}
