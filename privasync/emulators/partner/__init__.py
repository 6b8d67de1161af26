"""A partner on a loopback port that takes privasync's signed batches and acknowledges erasures.

Everything here is written from the documented scheme (README, "Partners") with
the standard library and requests only: it shares no code with
``connectors.partner``, so a mistake in our signing or our payloads fails the tests.
"""

from privasync.emulators.partner.emulator import PartnerEmulator
from privasync.emulators.partner.signature import Refused, check, signature, signed_headers

__all__ = ["PartnerEmulator", "Refused", "check", "signature", "signed_headers"]
