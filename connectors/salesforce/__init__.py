"""Salesforce (simple-salesforce): polls Contact/Lead/Individual changes; writes opt-outs
and mapped fields; erases and exports people."""

from connectors.salesforce.connector import SalesforceConnector
from connectors.salesforce.poller import PollResult, SalesforceCursor

__all__ = ["PollResult", "SalesforceConnector", "SalesforceCursor"]
