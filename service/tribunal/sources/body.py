"""Reading an HTTP request body with a size limit and a deadline, for the webhook and the ingest
endpoints, and refusing one that cannot be read."""

from __future__ import annotations

import asyncio

from aiohttp import web


class BodyError(ValueError):
    """The body is empty, over the limit, or cannot be decoded; the message says which. ``status`` is
    the HTTP status to answer; ``close``: close the connection after the answer (the rest of the
    body was not read, and cannot be: see :func:`answer`)."""

    status = 400

    def __init__(self, message: str, *, close: bool = False) -> None:
        super().__init__(message)
        self.close = close


class BodyTimeout(BodyError):
    """The body did not arrive in time: a client too slow, or one holding the connection on purpose."""

    status = 408

    def __init__(self, message: str) -> None:
        super().__init__(message, close=True)


async def read_limited(request: web.Request, limit: int, seconds: float | None = None) -> bytes:
    """The whole body; BodyError when it is empty or over ``limit`` bytes (checked against
    Content-Length first, then while reading, so a lying or missing header cannot get past it), when
    its Content-Encoding (gzip, deflate…) does not decode, and BodyTimeout when it has not all
    arrived ``seconds`` after the headers (a body sent a byte at a time holds a connection and
    a handler for as long as the client likes)."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyError(f"body of {request.content_length} bytes is over the {limit} byte limit")
    body = bytearray()
    try:
        async with asyncio.timeout(seconds):
            async for chunk in request.content.iter_any():
                body += chunk
                if len(body) > limit:
                    raise BodyError(f"body is over the {limit} byte limit")
    except TimeoutError:
        raise BodyTimeout(f"the body did not arrive within {seconds:g} s") from None
    except web.RequestPayloadError as exc:  # a corrupt gzip or deflate stream, broken chunking
        raise BodyError(_undecodable(request, exc), close=True) from None
    if not body.strip():
        raise BodyError("empty body")
    return bytes(body)


async def answer_refusal(request: web.Request, response: web.Response, error: BodyError) -> web.Response:
    """``response`` to a body that ``error`` refused. When the rest of the body cannot be read (too
    slow, or undecodable), the answer is sent and the connection closed at once: otherwise aiohttp
    would go on reading what is left of the body after the answer, at the client's pace."""
    if not error.close:
        return response
    response.force_close()  # Connection: close
    await response.prepare(request)
    await response.write_eof()
    request.protocol.force_close()
    return response


def _undecodable(request: web.Request, exc: web.RequestPayloadError) -> str:
    cause = getattr(exc.__cause__, "message", None) or str(exc)
    detail = " ".join(str(cause).split())
    encoding = request.headers.get("Content-Encoding")
    if encoding:
        return f"the body could not be decoded as its Content-Encoding: {encoding} says ({detail})"
    return f"the body could not be read ({detail})"
