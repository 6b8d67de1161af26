"""Partners and processors (Art. 28): HMAC-signed consent updates, acknowledged.

The signing names are re-exported from ``connectors.signing``, where the scheme
now lives for every outgoing webhook, so partners' code keeps importing them here.
"""

from connectors.partner.destination import PartnerConnector
from connectors.signing import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
    verify,
)

__all__ = ["EVENT_ID_HEADER", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "PartnerConnector",
           "sign", "verify"]
