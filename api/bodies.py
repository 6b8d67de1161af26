"""Request bodies read within a limit, shared by the webhooks and the admin API.

The declared length is checked before a byte is read, and the stream is counted
as it arrives (a sender may lie or send chunks): nobody makes us buffer more than
``max_body_bytes``.
"""

from __future__ import annotations

from starlette.requests import Request

from core.errors import BadInput


class BodyTooLarge(BadInput):
    """The body is larger than the limit (-> 413); nothing of it was kept."""


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise BodyTooLarge(f"body larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
