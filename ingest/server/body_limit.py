"""The request-body limit of every route (docs/limits.md, "Requests").

`BodyLimit` is ASGI middleware: a request whose Content-Length is over the limit is answered
413 before any of its body is read; a body without a length (chunked) is read only up to the
limit, then answered 413 without reading the rest. A body within the limit is handed to the
application as read. Routes that decompress a body (OTLP's gzip) hold the decompressed
bytes to the same limit through `check_size`, which raises `BodyTooLarge` (also a 413).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi.responses import Response

from ingest.server.encoding import error_body, json_response

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]


class BodyTooLarge(Exception):
    """A request body (after decompression) over the server's limit: answered 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"larger than the limit of {limit:,} bytes (AI_RUNS_MAX_BODY)")
        self.limit = limit


def check_size(data: bytes, limit: int) -> bytes:
    """`data` when at most `limit` bytes; BodyTooLarge otherwise."""
    if len(data) > limit:
        raise BodyTooLarge(limit)
    return data


def too_large_response(error: BodyTooLarge) -> Response:
    """The 413 answer naming the limit."""
    return json_response(error_body("body", str(error)), 413)


class BodyLimit:
    """ASGI middleware holding every HTTP request body to `limit` bytes (see the module)."""

    def __init__(self, app: App, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            _check_declared_length(scope, self.limit)
            body = await _read_body(receive, self.limit)
        except BodyTooLarge as error:
            response = too_large_response(error)
            response.headers["Connection"] = "close"  # the rest of the body is not read
            await response(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)


def _check_declared_length(scope: MutableMapping[str, Any], limit: int) -> None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length" and value.strip().isdigit() and int(value) > limit:
            raise BodyTooLarge(limit)


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, read chunk by chunk and never more than limit + one chunk; None when
    the client went away first."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes | None, receive: Receive) -> Receive:
    """A receive that hands the application the body read, then the client's own events."""
    first: Message = (
        {"type": "http.disconnect"}
        if body is None
        else {"type": "http.request", "body": body, "more_body": False}
    )
    pending = [first]

    async def replayed() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replayed
