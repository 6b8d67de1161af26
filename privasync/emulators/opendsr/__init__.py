"""An OpenDSR v2 processor on a loopback port, signing with a certificate from its own test CA.

Standard library, requests, cryptography and the contract models of
``privasync.emulators.contracts.opendsr``: it shares no code with ``connectors.partner``, so our
OpenDSR requests and our callback checks are tested against an independent reading of the
specification.
"""

from privasync.emulators.opendsr.authority import TestAuthority, pem, sign
from privasync.emulators.opendsr.emulator import API_VERSION, Answer, OpenDsrEmulator

__all__ = ["API_VERSION", "Answer", "OpenDsrEmulator", "TestAuthority", "pem", "sign"]
