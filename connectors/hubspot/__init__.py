"""HubSpot: signed webhooks in; communication-preference statuses and contact fields out."""

from connectors.hubspot.connector import HubSpotConnector

__all__ = ["HubSpotConnector"]
