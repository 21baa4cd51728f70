"""API keys: once ``FACECORE_API_KEYS`` is set, every ``/v1`` route needs one.

An ASGI middleware, so it covers every route under ``/v1`` (present and future) before the
request body is read. The key comes in ``X-API-Key: <key>`` or ``Authorization: Bearer <key>``; a
missing or wrong key is a 401 JSON error with ``WWW-Authenticate``. Keys are compared with
:func:`hmac.compare_digest` against every configured key (no early exit), and never logged.
``/healthz``, ``/readyz``, ``/metrics`` and the documentation stay open. With no key set every
route is open (the app logs a warning at start-up).
"""

from __future__ import annotations

import hmac
import json

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["PROTECTED_PREFIX", "ApiKeyAuth", "is_protected"]

PROTECTED_PREFIX = "/v1"


def is_protected(path: str) -> bool:
    return path == PROTECTED_PREFIX or path.startswith(PROTECTED_PREFIX + "/")


def _key_of(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    for k, v in headers:
        if k == b"x-api-key":
            return v.strip()
    for k, v in headers:
        if k == b"authorization":
            scheme, _, token = v.strip().partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                return token.strip()
    return None


class ApiKeyAuth:
    def __init__(self, app: ASGIApp, keys: tuple[bytes, ...], metrics: object | None = None):
        self.app = app
        self.keys = tuple(keys)
        self.metrics = metrics

    def allowed(self, key: bytes | None) -> bool:
        if key is None:
            return False
        ok = False
        for k in self.keys:  # every key, no early exit
            ok |= hmac.compare_digest(key, k)
        return ok

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys or not is_protected(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        key = _key_of(scope.get("headers", []))
        if self.allowed(key):
            await self.app(scope, receive, send)
            return
        rejected = getattr(self.metrics, "rejected", None)
        if rejected is not None:
            rejected.labels("unauthorized").inc()
        what = "no API key" if key is None else "the API key is not valid"
        message = f"{what}; send it in X-API-Key or Authorization: Bearer"
        body = json.dumps({"error": {"code": "unauthorized", "message": message}}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b'Bearer realm="facecore"'),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
