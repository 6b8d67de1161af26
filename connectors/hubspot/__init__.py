"""HubSpot: signed webhooks in, communication-preference statuses out."""

from connectors.hubspot.connector import HubSpotConnector

__all__ = ["HubSpotConnector"]
