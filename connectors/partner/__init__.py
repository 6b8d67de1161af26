"""Partners and processors (Art. 28): signed consent updates and erasure requests, acknowledged."""

from connectors.partner.acks import parse_ack
from connectors.partner.destination import PartnerConnector
from connectors.partner.signing import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
    verify,
)

__all__ = ["EVENT_ID_HEADER", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "PartnerConnector",
           "parse_ack", "sign", "verify"]
