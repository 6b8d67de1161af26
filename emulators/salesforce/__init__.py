"""A Salesforce REST emulator (see ``emulators.salesforce.emulator``)."""

from emulators.contracts.salesforce import COLLECTION_LIMIT
from emulators.salesforce.emulator import API, SOAP, SalesforceEmulator
from emulators.salesforce_schema import render

__all__ = ["API", "COLLECTION_LIMIT", "SOAP", "SalesforceEmulator", "render"]
