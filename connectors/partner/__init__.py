"""Partners and processors (Art. 28): signed consent updates and erasure requests, acknowledged.

``PartnerConnector`` speaks privasync's own HMAC-signed JSON; ``OpenDsrConnector``
speaks OpenDSR v2 to processors that take erasure requests by API. The signing names
are re-exported from ``connectors.signing``, where the scheme lives for every outgoing
webhook.
"""

from connectors.partner.acks import parse_ack
from connectors.partner.destination import PartnerConnector
from connectors.partner.opendsr import OpenDsrConnector
from connectors.partner.opendsr_signing import (
    DOMAIN_HEADER as OPENDSR_DOMAIN_HEADER,
)
from connectors.partner.opendsr_signing import (
    SIGNATURE_HEADER as OPENDSR_SIGNATURE_HEADER,
)
from connectors.partner.opendsr_signing import verify_callback
from connectors.signing import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
    verify,
)

__all__ = ["EVENT_ID_HEADER", "OPENDSR_DOMAIN_HEADER", "OPENDSR_SIGNATURE_HEADER",
           "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "OpenDsrConnector", "PartnerConnector",
           "parse_ack", "sign", "verify", "verify_callback"]
