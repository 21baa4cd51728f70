"""Request body limits: size and time, enforced while the body streams in.

:class:`BodySizeLimit` is an ASGI middleware. A declared ``Content-Length`` over the limit is
answered 413 at once, before any of the body is read; a body that streams past the limit
(chunked, or a lying header) stops being read and the request fails with 413 too. The body must
also arrive within ``body_timeout_s`` of the request's start: a client that trickles it (one byte
a second) gets a 408 and the connection is closed, so it holds neither memory nor a worker for
long (the CPU workers only ever see complete images).

Uploads stay in memory: Starlette's multipart parser spools a file part over 1 MiB to a temporary
file on disk; :func:`keep_uploads_in_memory` raises that threshold so no upload is ever written
to disk (memory is bounded by the body size limit instead).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartParser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodySizeLimit", "keep_uploads_in_memory"]


def keep_uploads_in_memory() -> None:
    """Never spool multipart uploads to disk (for every route: a process-wide setting)."""
    MultiPartParser.spool_max_size = sys.maxsize


class BodySizeLimit:
    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        body_timeout_s: float | None = None,
        metrics: object | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.body_timeout_s = body_timeout_s
        self.metrics = metrics

    def _message(self, size: int | None = None) -> str:
        what = f"request body of {size} bytes" if size is not None else "request body"
        return f"{what} is over the limit of {self.max_bytes} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = None
        for k, v in scope.get("headers", ()):
            if k == b"content-length":
                try:
                    declared = int(v)
                except ValueError:
                    declared = None
        if declared is not None and declared > self.max_bytes:
            body = json.dumps(
                {"error": {"code": "request_too_large", "message": self._message(declared)}}
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 413,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"connection", b"close"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return

        seen = 0
        complete = False
        deadline = None
        if self.body_timeout_s is not None:
            deadline = asyncio.get_running_loop().time() + self.body_timeout_s
        started = time.monotonic()

        async def limited_receive() -> Message:
            nonlocal seen, complete
            if complete or deadline is None:
                message = await receive()
            else:
                try:
                    async with asyncio.timeout_at(deadline):
                        message = await receive()
                except TimeoutError:
                    rejected = getattr(self.metrics, "rejected", None)
                    if rejected is not None:
                        rejected.labels("body_timeout").inc()
                    raise HTTPException(
                        408,
                        f"request body not received within {self.body_timeout_s:g} s "
                        f"({seen} bytes in {time.monotonic() - started:.1f} s)",
                        headers={"Connection": "close"},
                    ) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise HTTPException(413, self._message(), headers={"Connection": "close"})
                if not message.get("more_body", False):
                    complete = True
            elif message["type"] == "http.disconnect":
                complete = True
            return message

        await self.app(scope, limited_receive, send)
