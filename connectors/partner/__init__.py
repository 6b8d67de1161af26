"""Partners and processors (Art. 28): HMAC-signed consent updates, acknowledged."""

from connectors.partner.destination import PartnerConnector
from connectors.partner.signing import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
    verify,
)

__all__ = ["EVENT_ID_HEADER", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "PartnerConnector",
           "sign", "verify"]
