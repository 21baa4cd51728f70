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

Refusals are also paced (:class:`RefusalPacer`): at most ``refusal_rate`` a second (default
100) are answered at once; past that rate a refusal waits its turn, at most ``refusal_wait_s``
(0.5 s), before its 503 is sent. Clients that honour ``Retry-After`` never notice. Clients that
ignore it and send again as soon as they are refused (the overload case of ``make overload``)
otherwise keep the event loop busy refusing, thousands of times a second however cheap each
refusal is, and that CPU is taken from the workers on the same cores: the successful requests a
second fall. Paced, such a client gets its 503 a little later and the refusals cost at most
``refusal_rate`` times one refusal's CPU (about 0.2 ms here: 2% of a core). A waiting refusal
holds only its connection, a timer and the part of its body the server has buffered (uvicorn
stops reading a body at 64 KiB); none waits longer than ``refusal_wait_s``, so more clients
than ``refusal_rate x refusal_wait_s`` get more refusals, at most one per ``refusal_wait_s``
each.

Every other route (``/healthz``, ``/readyz``, ``/metrics``, the docs, ``GET /v1/stages``) and
every other method passes through. A request that passes and then finds the queue full once
its body is read is still refused by the engine.

This module implements no paper.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.errors import error_body
from app.core.metrics import Metrics
from app.core.middleware import REFUSED

__all__ = ["Admission", "RefusalPacer"]


class RefusalPacer:
    """When each refusal may be answered: at most ``rate`` a second at once, the rest in turn.

    A refusal takes the next free turn (turns are ``1 / rate`` seconds apart) and waits until
    it; one whose turn is more than ``max_wait`` seconds away waits ``max_wait`` and takes no
    turn. So refusals are answered at most ``max(rate, c / max_wait)`` a second, ``c`` the
    connections that send them (HTTP/1.1: one request at a time each).

    Parameters
    ----------
    rate : float
        Refusals a second; 0: none ever waits.
    max_wait : float
        Longest wait, seconds.
    clock : Callable[[], float]
        Seconds, monotonic (a test's clock).
    """

    def __init__(
        self, rate: float, max_wait: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.max_wait = max_wait
        self.clock = clock
        self._next = 0.0  # the next free turn

    def delay(self) -> float:
        """Seconds the refusal being made now waits before it is answered (takes its turn)."""
        if not self.interval:
            return 0.0
        now = self.clock()
        turn = max(now, self._next)
        if turn - now > self.max_wait:
            return self.max_wait
        self._next = turn + self.interval
        return turn - now


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
    pacer : RefusalPacer, optional
        When each refusal is answered; None: at once.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        state: Any,
        routes: Mapping[str, Any],
        metrics: Metrics,
        pacer: RefusalPacer | None = None,
    ) -> None:
        self.app = app
        self.state = state
        self.routes = dict(routes)
        self.rejected = metrics.rejected.labels("overloaded")
        self.pacer = pacer
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
        wait = self.pacer.delay() if self.pacer is not None else 0.0
        if wait > 0:
            await asyncio.sleep(wait)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
