"""Reading an HTTP request body with a size limit, for the webhook and the ingest endpoints."""

from __future__ import annotations

from aiohttp import web


class BodyError(ValueError):
    """The body is empty or over the limit; the message says which."""


async def read_limited(request: web.Request, limit: int) -> bytes:
    """The whole body; BodyError when it is empty or over ``limit`` bytes (checked against
    Content-Length first, then while reading, so a lying or missing header cannot get past it)."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyError(f"body of {request.content_length} bytes is over the {limit} byte limit")
    body = bytearray()
    async for chunk in request.content.iter_any():
        body += chunk
        if len(body) > limit:
            raise BodyError(f"body is over the {limit} byte limit")
    if not body.strip():
        raise BodyError("empty body")
    return bytes(body)
