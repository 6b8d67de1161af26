"""A Salesforce REST emulator (see ``privasync.emulators.salesforce.emulator``)."""

from privasync.emulators.contracts.salesforce import COLLECTION_LIMIT
from privasync.emulators.salesforce.emulator import API, SOAP, SalesforceEmulator
from privasync.emulators.salesforce_schema import render

__all__ = ["API", "COLLECTION_LIMIT", "SOAP", "SalesforceEmulator", "render"]
