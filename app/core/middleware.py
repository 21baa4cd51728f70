"""The outermost middleware: request id, access log, metrics, time limit and draining.

For every HTTP request:

* **Request id.** The client's ``X-Request-ID`` when it is 1-128 characters of
  ``A-Z a-z 0-9 . _ : -`` (anything else is replaced), else a new one; echoed in the response's
  ``X-Request-ID`` and set in :data:`app.core.logs.request_id` for every record logged while
  serving it.
* **Time limit.** The request must be answered within ``request_timeout_s``; past it, it is
  cancelled (its images still waiting in the queue are dropped) and answered 504 ``timeout``,
  never left hanging.
* **Draining.** Once the server is shutting down (:class:`Lifecycle`), new ``/v1`` requests are
  answered 503 ``shutting_down`` with ``Retry-After`` and ``Connection: close``; requests already
  in flight finish.
* **Bugs.** An exception that escapes a route is logged with its traceback and answered 500
  ``internal_error`` (with the request id; nothing of the cause is shown).
* **Access log and metrics**: one ``app.access`` record per request (method, path, route,
  status, duration; never the body, the query string or headers) and the request metrics, by the
  route's template. A request refused before its body was read (marked with :data:`REFUSED` by
  :class:`app.core.admission.Admission`) is counted in the metrics like any other, but logged in
  a summary: one ``app.access`` record a second (``refusal_log_s``) for each reason, with the
  number refused since the last (``count``), not one record each. Under overload there are
  thousands of refusals a second, and a record each took a third of a refusal's CPU in this
  process; the summary of the last second is lost if the server stops before it is written.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.auth import is_protected
from app.core.logs import request_id
from app.core.metrics import Metrics

__all__ = ["REFUSED", "REQUEST_ID_HEADER", "Lifecycle", "RequestContext", "valid_request_id"]

log = logging.getLogger("app")
access = logging.getLogger("app.access")

REQUEST_ID_HEADER = "X-Request-ID"
#: Scope key of a request refused before its body was read; its value is the reason.
REFUSED = "facecore.refused"
_ID_RE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


def valid_request_id(value: str | bytes | None) -> str | None:
    """``value`` if it is an acceptable request id, else None."""
    if value is None:
        return None
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    return value if _ID_RE.fullmatch(value) else None


class Lifecycle:
    """Draining state and the count of requests in flight."""

    def __init__(self) -> None:
        self.draining = False
        self.in_flight = 0
        self._idle: asyncio.Event | None = None

    def _event(self) -> asyncio.Event:
        if self._idle is None:
            self._idle = asyncio.Event()
            if self.in_flight == 0:
                self._idle.set()
        return self._idle

    def enter(self) -> None:
        self.in_flight += 1
        self._event().clear()

    def leave(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self._event().set()

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is in flight; False if ``timeout`` passed first."""
        try:
            await asyncio.wait_for(self._event().wait(), timeout)
            return True
        except TimeoutError:
            return False


def _json(status: int, code: str, message: str, extra: list[tuple[bytes, bytes]]) -> list[Message]:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    return [
        {"type": "http.response.start", "status": status, "headers": headers},
        {"type": "http.response.body", "body": body},
    ]


class RequestContext:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        lifecycle: Lifecycle,
        timeout_s: float,
        retry_after_s: int = 1,
        refusal_log_s: float = 1.0,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.lifecycle = lifecycle
        self.timeout_s = timeout_s
        self.retry_after = str(retry_after_s).encode()
        self.refusal_log_s = refusal_log_s
        self._refused: dict[str, int] = {}  # reason -> refused since the last summary
        self._refused_since = 0.0

    def _count_refusal(self, reason: str) -> None:
        """Count a refusal for the next summary record (scheduled with the first one)."""
        if not self._refused:
            self._refused_since = time.monotonic()
            asyncio.get_running_loop().call_later(self.refusal_log_s, self._log_refusals)
        self._refused[reason] = self._refused.get(reason, 0) + 1

    def _log_refusals(self) -> None:
        seconds = round(time.monotonic() - self._refused_since, 2)
        for reason, count in self._refused.items():
            access.info(
                "%d requests refused (%s) in %.2f s",
                count,
                reason,
                seconds,
                extra={"status": 503, "reason": reason, "count": count, "seconds": seconds},
            )
        self._refused.clear()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = None
        for k, v in scope.get("headers", ()):
            if k == b"x-request-id":
                rid = valid_request_id(v)
                break
        rid = rid or uuid.uuid4().hex
        token = request_id.set(rid)
        scope.setdefault("state", {})["request_id"] = rid
        t0 = time.perf_counter()
        status = 0
        started = False
        id_header = (b"x-request-id", rid.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), id_header]}
            await send(message)

        async def answer(code_status: int, code: str, message: str, extra=()) -> None:  # noqa: ANN001
            for m in _json(code_status, code, message, [*extra]):
                await send_with_id(m)

        path = scope.get("path", "")
        self.lifecycle.enter()
        try:
            if self.lifecycle.draining and is_protected(path):
                self.metrics.rejected.labels("shutting_down").inc()
                await answer(
                    503,
                    "shutting_down",
                    "the server is shutting down; try again shortly",
                    [(b"retry-after", self.retry_after), (b"connection", b"close")],
                )
                return
            try:
                async with asyncio.timeout(self.timeout_s) as cm:
                    await self.app(scope, receive, send_with_id)
            except TimeoutError:
                if not cm.expired():
                    raise
                self.metrics.rejected.labels("timeout").inc()
                log.warning("request over its time limit of %g s", self.timeout_s)
                if not started:
                    await answer(
                        504,
                        "timeout",
                        f"the request took longer than {self.timeout_s:g} s",
                        [(b"connection", b"close")],
                    )
        except Exception as exc:
            log.error("unhandled error in %s %s", scope.get("method"), path, exc_info=exc)
            if not started:
                await answer(500, "internal_error", "internal error; see the service log")
            else:
                status = 500
        finally:
            self.lifecycle.leave()
            elapsed = time.perf_counter() - t0
            route = scope.get("route")
            template = getattr(route, "path", None)
            if template is None:  # a plain Starlette route (the docs) has no "route" in scope
                template = path[:100] if scope.get("endpoint") is not None else "unmatched"
            method = scope.get("method", "")
            self.metrics.requests.labels(template, method, str(status)).inc()
            self.metrics.latency.labels(template, method).observe(elapsed)
            refused = scope.get(REFUSED)
            if refused is not None and status == 503:
                self._count_refusal(refused)
            else:
                access.info(
                    "%s %s %s",
                    method,
                    path[:200],
                    status,
                    extra={
                        "method": method,
                        "path": path[:200],
                        "route": template,
                        "status": status,
                        "duration_ms": round(1e3 * elapsed, 1),
                    },
                )
            request_id.reset(token)
