"""OpenDSR: what a processor takes and answers, and the callbacks it sends a controller.

Source: the OpenDSR specification, version 2.0, repository ``opengdpr/OpenDSR``, file
``specification.md`` at commit 6c080e2f277df3d908ba9dc16c1084638315b210 (section numbers
below are that text's). The legacy names of §10.1 ("all parties MUST honor the prior
versions named routes and headers") are from the same repository's OpenGDPR 1.0 text,
``OpenGDPR_specification.md`` before commit fa02d8b: routes ``/discovery``,
``/opengdpr_requests`` and ``/opengdpr_requests/{id}``, headers
``X-OpenGDPR-Processor-Domain`` and ``X-OpenGDPR-Signature``, ``api_version`` "1.0", and
no ``regulation`` field (2.0 added it: CHANGELOG.md, 2.0).

Where the text is silent the choice is marked ASSUMPTION with its reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# §5.1
IdentityType = Literal[
    "controller_customer_id", "android_advertising_id", "android_id", "email",
    "fire_advertising_id", "ios_advertising_id", "ios_vendor_id", "microsoft_advertising_id",
    "microsoft_publisher_id", "roku_publisher_id", "roku_advertising_id"]
# §5.2
IdentityFormat = Literal["raw", "sha1", "md5", "sha256"]
# §6.2, §7.1.1
SubjectRequestType = Literal["access", "portability", "erasure"]
# §8
RequestStatus = Literal["pending", "in_progress", "completed", "cancelled"]
# §7.1.1 (2.0 only)
Regulation = Literal["gdpr", "ccpa"]

# §1.1: "GUID MUST be lowercase and v4 format"; §7.1.1: subject_request_id is a UUID v4.
_UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
# RFC 3339 §5.6 date-time: full-date "T" full-time, the offset required (Z or +hh:mm).
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
# §3.4 semantic versioning; "api_version" examples are "major.minor" ("2.0").
_VERSION = re.compile(r"\d+\.\d+(\.\d+)?")
_BASE64 = re.compile(r"[A-Za-z0-9+/\s]+={0,2}")


def _uuid4(value: str) -> str:
    if not _UUID4.fullmatch(value):
        raise ValueError("must be a lowercase UUID v4")
    return value


def _rfc3339(value: str) -> str:
    if not _RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 date-time with its offset")
    return value


def _version(value: str) -> str:
    if not _VERSION.fullmatch(value):
        raise ValueError("must be a major.minor version string")
    return value


def _url(value: str) -> str:
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
        raise ValueError("must be an absolute http(s) URL")
    return value


def _base64(value: str) -> str:
    if not _BASE64.fullmatch(value):
        raise ValueError("must be Base64")
    return value


RequestId = Annotated[str, AfterValidator(_uuid4)]
Timestamp = Annotated[str, AfterValidator(_rfc3339)]
ApiVersion = Annotated[str, AfterValidator(_version)]
Url = Annotated[str, AfterValidator(_url)]
Base64 = Annotated[str, AfterValidator(_base64)]


class _Shape(BaseModel):
    # ASSUMPTION: the text lists each object's properties and never mentions others; the
    # models forbid unknown ones, so an emulator answer with a stray field fails its
    # contract test and a request with one is refused as a well-formed processor might.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Identity(_Shape):
    """§5.3: every property REQUIRED."""

    identity_type: IdentityType
    identity_value: str = Field(min_length=1)
    identity_format: IdentityFormat


class SupportedIdentity(_Shape):
    """§6.3 supported_identities: "identity_type" and "identity_format" pairs (§5.3: the
    value does not apply to discovery)."""

    identity_type: IdentityType
    identity_format: IdentityFormat


class Discovery(_Shape):
    """§6.3: the answer to ``GET /discovery``, 200, all four REQUIRED."""

    api_version: ApiVersion
    supported_identities: list[SupportedIdentity]
    supported_subject_request_types: list[SubjectRequestType]
    processor_certificate: Url


class LegacySubjectRequest(_Shape):
    """OpenGDPR 1.0 §7.1.1: the body of ``POST /opengdpr_requests``; no ``regulation``."""

    subject_request_id: RequestId
    subject_request_type: SubjectRequestType
    subject_identities: list[Identity] | None = None
    submitted_time: Timestamp
    api_version: ApiVersion | None = None
    status_callback_urls: list[Url] | None = None
    # §7.1.2: keyed by processor domain, each a processor-defined object.
    extensions: dict[str, dict[str, object]] | None = None

    def identities_present(self) -> bool:
        """§5.3/§7.1.1: identities are REQUIRED unless an extension carries them."""
        return bool(self.subject_identities) or bool(self.extensions)


class SubjectRequest(LegacySubjectRequest):
    """§7.1.1: the body of ``POST /requests`` (2.0): the 1.0 body and its ``regulation``."""

    regulation: Regulation


class Created(_Shape):
    """§7.3: the 201 answer to a well-formed request."""

    controller_id: str
    expected_completion_time: Timestamp
    received_time: Timestamp
    encoded_request: Base64
    subject_request_id: RequestId
    # §7.3 lists processor_signature as REQUIRED "signature of the SHA 256 digest of the body
    # of the response", but §7.4's example carries it as the X-OpenDSR-Signature header and
    # not in the body (a body cannot hold its own signature). ASSUMPTION: the header is the
    # signature; the body may repeat it.
    processor_signature: Base64 | None = None


class Status(_Shape):
    """§8.3: the 200 answer to ``GET /requests/{id}``; signed by the §8.3 headers."""

    controller_id: str
    expected_completion_time: Timestamp
    subject_request_id: RequestId
    request_status: RequestStatus
    api_version: ApiVersion | None = None
    results_url: Url | None = None
    results_count: int | None = Field(default=None, ge=0)


class Callback(_Shape):
    """§8.6: the body a processor POSTs to each status_callback_url; signed by the §8.6
    headers."""

    controller_id: str
    status_callback_url: Url
    subject_request_id: RequestId
    request_status: RequestStatus
    expected_completion_time: Timestamp
    results_url: Url | None = None
    results_count: int | None = Field(default=None, ge=0)


class Cancelled(_Shape):
    """§9.2: the 202 answer to ``DELETE /requests/{id}``."""

    controller_id: str
    received_time: Timestamp
    subject_request_id: RequestId
    processor_signature: Base64 | None = None  # as in Created: §9.3 carries it as a header
    api_version: ApiVersion | None = None


class ErrorDetail(_Shape):
    """§7.6 errors[]: "message" "domain", "reason" (none marked required: all optional)."""

    message: str | None = None
    domain: str | None = None
    reason: str | None = None


class ErrorObject(_Shape):
    """§7.6: ``code`` REQUIRED (the HTTP status), the rest OPTIONAL. MUST NOT carry
    identities or authentication details."""

    code: int
    message: str | None = None
    errors: list[ErrorDetail] | None = None


class ErrorBody(_Shape):
    """§7.5: errors are answered 400 with an OPTIONAL ``error`` object."""

    error: ErrorObject | None = None


@dataclass(frozen=True)
class Dialect:
    """The names one version of the protocol uses on the wire."""

    version_path: str     # §3.4: the major version starts every URL
    requests_path: str    # §7.2, §8.2, §9.1
    domain_header: str    # §8.3, §8.6
    signature_header: str
    api_version: str


OPENDSR = Dialect("/v2", "/requests", "X-OpenDSR-Processor-Domain", "X-OpenDSR-Signature", "2.0")
OPENGDPR = Dialect("/v1", "/opengdpr_requests", "X-OpenGDPR-Processor-Domain",
                   "X-OpenGDPR-Signature", "1.0")

# §7.5: "For errors, the OpenDSR service MUST respond with HTTP status code 400".
ERROR_STATUS = 400
CREATED_STATUS = 201    # §7.3
STATUS_STATUS = 200     # §8.4
CANCELLED_STATUS = 202  # §9.2
# ASSUMPTION (spec silent): an unknown subject_request_id on GET or DELETE is 404 with the
# §7.6 error object, as HTTP (RFC 9110 §15.5.5) has it for a resource that is not there.
UNKNOWN_STATUS = 404
# §9: a request "MAY be cancelled by the Controller while in status pending"; a DELETE for
# one in progress or completed is an error, so 400 (§7.5). ASSUMPTION: a second DELETE of a
# cancelled request is answered 202 again (DELETE is idempotent, RFC 9110 §9.2.2).
CANCELLABLE: tuple[RequestStatus, ...] = ("pending",)
