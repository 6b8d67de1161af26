"""Request bodies read within bounds, shared by the webhooks and the admin API.

The media type is checked before a byte is read (415), and so is the declared
length (413); the stream is counted as it arrives (a sender may lie or send
chunks), so nobody makes us buffer more than the limit; and the whole body must
arrive within a deadline (408), so a client trickling a byte at a time cannot
hold a connection and its buffer for as long as it likes.
"""

from __future__ import annotations

import anyio
from starlette.requests import Request

from core.errors import BadInput


class BodyTooLarge(BadInput):
    """The body is larger than the limit (-> 413); nothing of it was kept."""


class BodyReadTimeout(BadInput):
    """The body did not arrive within the deadline (-> 408); nothing of it was kept."""


class UnsupportedMediaType(BadInput):
    """A body not of the media type the endpoint reads (-> 415)."""


def close_after(exc: Exception) -> dict[str, str]:
    """``Connection: close`` for a refusal that leaves the body unread (too slow, too
    large): the server then drops the connection instead of waiting for the rest."""
    return {"Connection": "close"} if isinstance(exc, BodyReadTimeout | BodyTooLarge) else {}


def require_media(request: Request, *accepted: str) -> None:
    """Raise UnsupportedMediaType unless Content-Type (parameters aside) is one of
    ``accepted``."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in accepted:
        raise UnsupportedMediaType(f"send the body as Content-Type: {' or '.join(accepted)}")


async def read_body(request: Request, limit: int, timeout: float | None = None) -> bytes:
    """The whole body, at most ``limit`` bytes, within ``timeout`` seconds (None: no
    deadline). Raises BodyTooLarge or BodyReadTimeout."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise BodyTooLarge(f"body larger than {limit} bytes")
    chunks, size = [], 0
    try:
        with anyio.fail_after(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge(f"body larger than {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise BodyReadTimeout(f"the body did not arrive within {timeout:g} s") from None
    return b"".join(chunks)
