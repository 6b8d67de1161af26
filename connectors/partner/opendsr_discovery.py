"""What a processor's ``/discovery`` must offer before privasync sends it anything (OpenDSR
v2.0 §6.3): its major version, the request types and the identities we send, and where its
signing certificate is. Each gap is named, never a value of ours.
"""

from __future__ import annotations

from typing import Any

from connectors.partner.opendsr_signing import Dialect


def gaps(discovery: Any, dialect: Dialect, request_types: tuple[str, ...],
         identities: tuple[tuple[str, str], ...]) -> list[str]:
    """What ``discovery`` lacks that privasync needs; [] if nothing."""
    if not isinstance(discovery, dict):
        return ["discovery is not a JSON object"]
    missing = []
    version, major = discovery.get("api_version"), dialect.api_version.split(".")[0]
    if not isinstance(version, str) or version.split(".")[0] != major:
        # §3.4: breaking changes go to another major version; we speak this one.
        missing.append(f"api_version {major}.x (discovery at {dialect.version_path} says "
                       f"{version if isinstance(version, str) and len(version) < 16 else '?'})")
    types = discovery.get("supported_subject_request_types")
    offered = set(types) if isinstance(types, list) and all(
        isinstance(t, str) for t in types) else set()
    missing += [f"subject_request_type {t}" for t in request_types if t not in offered]
    pairs = discovery.get("supported_identities")
    supported = {(p.get("identity_type"), p.get("identity_format")) for p in pairs
                 if isinstance(p, dict)} if isinstance(pairs, list) else set()
    missing += [f"identity {kind}/{form}" for kind, form in identities
                if (kind, form) not in supported]
    location = discovery.get("processor_certificate")
    if not isinstance(location, str) or not location.startswith(("https://", "http://")):
        missing.append("processor_certificate (the URL of its signing certificate)")
    return missing
