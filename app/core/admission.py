"""Early refusal under overload: a full queue answers 503 before the body is read.

:class:`Admission` is an ASGI middleware in front of the routes that queue images on the
workers (those whose answer needs the analysis service: ``/v1/analyze``, ``/v1/faces``,
``/v1/score``, ``/v1/age``, ``/v1/compare``, ``/v1/beautify``, ``/v1/average``, one image or
several). When :meth:`app.core.engine.Engine.would_accept` says that the queue cannot take one
more image, the request is answered at once with the engine's own 503 ``overloaded`` (the same
JSON body and ``Retry-After`` as a refusal by :meth:`~app.core.engine.Engine.submit`), before its
body is read, parsed or decoded, and before FastAPI resolves its dependencies. Measured here
before it existed: under 64 clients that ignore ``Retry-After``, a refusal went through the
whole multipart parse and the exception handlers, and the refusals took so much CPU that the
successful requests a second fell by 40%.

The body is left unread: the server discards it (uvicorn reads and drops what follows a
complete response) and the connection stays open for the next request, so the client gets the
503 rather than a reset and does not pay for a new connection. A refusal costs as little as
it can, because under overload refusals can take the CPU the workers need: its
answer is built once per queue length and reused, and it is logged in the access log's
once-a-second summary of refusals, not one record each (the request is marked with
:data:`~app.core.middleware.REFUSED`; :class:`~app.core.middleware.RequestContext` still counts
it in the request metrics and echoes its request id).

Every other route (``/healthz``, ``/readyz``, ``/metrics``, the docs, ``GET /v1/stages``) and
every other method passes through. A request that passes and then finds the queue full once
its body is read is still refused by the engine.

This module implements no paper.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.errors import error_body
from app.core.metrics import Metrics
from app.core.middleware import REFUSED

__all__ = ["Admission"]


class Admission:
    """Refuse the image routes' requests with 503 ``overloaded`` while the queue is full.

    Parameters
    ----------
    app : ASGIApp
        The application inside.
    state : Any
        The app's ``state``; its ``engine`` (set at start-up) is asked. Before start-up
        nothing is refused.
    routes : Mapping[str, Any]
        The routes that queue images, by path; each has ``methods``. The refused request's
        scope gets its ``route`` (so metrics and the access log name it).
    metrics : Metrics
        ``facecore_rejected_total{reason="overloaded"}`` counts the refusals.
    """

    def __init__(
        self, app: ASGIApp, *, state: Any, routes: Mapping[str, Any], metrics: Metrics
    ) -> None:
        self.app = app
        self.state = state
        self.routes = dict(routes)
        self.rejected = metrics.rejected.labels("overloaded")
        # (images waiting, Retry-After) -> (status, headers, body) of the answer
        self._answers: dict[tuple[int, int], tuple[int, list[tuple[bytes, bytes]], bytes]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            route = self.routes.get(scope["path"])
            if route is not None and scope["method"] in route.methods:
                engine = getattr(self.state, "engine", None)
                if engine is not None and not engine.closing and engine.full:
                    scope["route"] = route
                    scope[REFUSED] = "overloaded"
                    await self._refuse(engine, send)
                    return
        await self.app(scope, receive, send)

    def answer(self, engine: Any) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """The status, headers and body of the engine's 503 ``overloaded`` now (built once for
        each count of images waiting)."""
        key = (engine.queued, engine.retry_after_s)
        cached = self._answers.get(key)
        if cached is None:
            err = engine.overloaded()
            body = json.dumps(error_body(err.code, err.message)).encode()
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *((k.lower().encode(), v.encode()) for k, v in (err.headers or {}).items()),
            ]
            cached = (err.status, headers, body)
            if len(self._answers) < 1024:  # a queue longer than that builds the rest each time
                self._answers[key] = cached
        return cached

    async def _refuse(self, engine: Any, send: Send) -> None:
        self.rejected.inc()
        status, headers, body = self.answer(engine)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
