"""privasync wired to the vendor emulators on loopback: the demo, the end-to-end
tests and the benchmark all run this, with the real app, broker and workers."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from pydantic import SecretStr

from connectors.hubspot.plugin import HubSpotSettings
from connectors.mailchimp.plugin import MailchimpSettings
from connectors.salesforce.plugin import SalesforceSettings
from core.mappings import Mappings, load_mappings
from privasync.app.bootstrap import Container, build
from privasync.app.settings import (
    ApplierSettings,
    Settings,
    SmtpSettings,
    WorkerSettings,
)
from privasync.app.taxonomy import data_categories
from privasync.emulators.hubspot import HubSpotEmulator
from privasync.emulators.mailchimp import MailchimpEmulator
from privasync.emulators.partner import PartnerEmulator
from privasync.emulators.salesforce import SalesforceEmulator
from privasync.web.app import create_app

WEBHOOK_TOKEN = "demo-mailchimp-token"  # noqa: S105 - an emulator's, not a real secret
HUBSPOT_EVENTS = ("contact.creation", "contact.deletion", "contact.privacyDeletion",
                  "contact.merge", "contact.propertyChange:hs_email_optout")


def hubspot_subscriptions(mappings: Mappings) -> tuple[str, ...]:
    """What a HubSpot app would subscribe to: lifecycle events and every mapped property."""
    system = mappings.system("hubspot")
    properties = [f"hs_email_optout_{s}" for s in system.consent.subscriptions]
    properties += list(system.fields)
    return HUBSPOT_EVENTS + tuple(f"contact.propertyChange:{p}" for p in properties)


@dataclass
class Emulators:
    hubspot: HubSpotEmulator = field(default_factory=HubSpotEmulator)
    salesforce: SalesforceEmulator = field(default_factory=SalesforceEmulator)
    mailchimp: MailchimpEmulator = field(default_factory=MailchimpEmulator)
    partner: PartnerEmulator = field(default_factory=PartnerEmulator)

    def start(self) -> Emulators:
        for emulator in (self.hubspot, self.salesforce, self.mailchimp, self.partner):
            emulator.start()
        return self

    def stop(self) -> None:
        for emulator in (self.hubspot, self.salesforce, self.mailchimp, self.partner):
            emulator.stop()


def listening_socket() -> socket.socket:
    """A loopback socket on a port the kernel chose, bound before anything needs its URL."""
    sock = socket.socket()
    # Accepted connections inherit it: without it every keep-alive answer waits ~40 ms.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class AppServer:
    """uvicorn on a loopback socket, in a thread."""

    def __init__(self, container: Container, sock: socket.socket | None = None) -> None:
        self.sock = sock or listening_socket()
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(create_app(container), log_level="warning", access_log=False,
                                lifespan="off", log_config=None)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       name="privasync-http", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> AppServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def stack_settings(emu: Emulators, *, database_url: str, broker_url: str, var_dir: Path,
                   broker_namespace: str = "privasync",
                   mappings_dir: Path, poll_seconds: float = 0.5,
                   worker_threads: int = 4, public_url: str = "",
                   smtp_port: int | None = None,
                   extra: Mapping[str, Any] | None = None) -> Settings:
    smtp = SmtpSettings()
    if smtp_port is not None:  # a relay on loopback (the tests' and the demo's mailbox)
        smtp = SmtpSettings(host="127.0.0.1", port=smtp_port, starttls=False,
                            **{"from": "privacy@example.nl"})
    base: dict[str, Any] = dict(
        database_url=database_url, broker_url=broker_url, var_dir=var_dir,
        broker_namespace=broker_namespace, public_url=public_url, smtp=smtp,
        requests_watch_seconds=0.5,
        mappings_dir=mappings_dir, secret_key=SecretStr("stack-secret-key-0123456789abcdef"),
        hubspot=HubSpotSettings(base_url=emu.hubspot.url,
                                access_token=SecretStr(emu.hubspot.access_token),
                                client_secret=SecretStr(emu.hubspot.client_secret)),
        salesforce=SalesforceSettings(instance_url=emu.salesforce.url,
                                      session_id=SecretStr(emu.salesforce.session_id),
                                      poll_interval_seconds=poll_seconds),
        mailchimp=MailchimpSettings(base_url=f"{emu.mailchimp.url}/3.0",
                                    api_key=SecretStr(emu.mailchimp.api_key),
                                    list_id=emu.mailchimp.list_id,
                                    webhook_token=SecretStr(WEBHOOK_TOKEN)),
        worker=WorkerSettings(threads=worker_threads, min_backoff_seconds=0.2,
                              max_backoff_seconds=5.0, heartbeat_seconds=1.0,
                              dispatch_seconds=0.5, lease_seconds=5.0),
        applier=ApplierSettings(poll_seconds=0.05, lease_seconds=5.0))
    return Settings(**(base | dict(extra or {})))


@dataclass
class Stack:
    emulators: Emulators
    container: Container
    server: AppServer

    @property
    def url(self) -> str:
        return self.server.url

    def seed_customer(self, email: str, *, flush: bool = True) -> str:
        """A person known to every system and subscribed; returns the HubSpot contact id."""
        emu = self.emulators
        contact = emu.hubspot.create_contact(email)
        emu.hubspot.ui_set_subscription(contact, 101, True)
        emu.hubspot.ui_set_subscription(contact, 102, True)
        emu.salesforce.create_contact(email, last_name="Customer")
        emu.mailchimp.add_member(email, status="subscribed")
        if flush:
            emu.hubspot.flush_webhooks()
        return contact

    def stop(self) -> None:
        self.server.stop()
        self.container.close()
        self.emulators.stop()


def start_stack(*, database_url: str, var_dir: Path, broker_url: str = "",
                broker_namespace: str = "privasync",
                mappings_dir: Path = Path("mappings"), poll_seconds: float = 0.5,
                worker_threads: int = 4, emulators: Emulators | None = None,
                smtp_port: int | None = None, overrides: Mapping[str, Any] | None = None) -> Stack:
    """Emulators, the app on a free port, a worker and the scheduler, wired together.

    The partner emulator acknowledges erasures at our ack endpoint; with ``smtp_port``
    people are told by mail through the relay listening there; ``overrides`` adds to or
    replaces the stack's own settings (by field name)."""
    emu = (emulators or Emulators()).start()
    sock = listening_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    mappings = load_mappings(mappings_dir, data_categories())
    environ: dict[str, str] = {}
    for name, partner in mappings.partners.items():
        environ[partner.secret_setting] = emu.partner.secret
        if partner.url_setting:
            environ[partner.url_setting] = emu.partner.url + emu.partner.path
        if partner.protocol == "privasync":
            emu.partner.ack_url = f"{url}/webhooks/partners/{name}/ack"
    settings = stack_settings(emu, database_url=database_url, broker_url=broker_url,
                              broker_namespace=broker_namespace,
                              var_dir=var_dir, mappings_dir=mappings_dir,
                              poll_seconds=poll_seconds, worker_threads=worker_threads,
                              public_url=url, smtp_port=smtp_port, extra=overrides)
    container = build(settings, environ=environ)
    server = AppServer(container, sock).start()
    emu.hubspot.configure_webhooks(f"{server.url}/webhooks/hubspot",
                                   hubspot_subscriptions(mappings))
    emu.mailchimp.configure_webhook(f"{server.url}/webhooks/mailchimp/{WEBHOOK_TOKEN}")
    container.start_worker()
    container.start_scheduler()
    return Stack(emu, container, server)
