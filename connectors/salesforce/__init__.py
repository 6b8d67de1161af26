"""Salesforce (simple-salesforce): polls Contact/Lead/Individual changes, writes e-mail opt-outs."""

from connectors.salesforce.connector import SalesforceConnector
from connectors.salesforce.poller import PollResult, SalesforceCursor

__all__ = ["PollResult", "SalesforceConnector", "SalesforceCursor"]
