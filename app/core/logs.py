"""Structured logs: one JSON object a line, with the id of the request being served.

The request id lives in a context variable (:data:`request_id`) set by the request middleware
(:mod:`app.core.middleware`) and by a worker while it runs an image of that request, so every
record logged while serving a request carries it. Nothing here ever logs a request body, an
image, a header value or an API key: records hold what the code passes to ``log.*`` only.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import Any

__all__ = ["JsonFormatter", "configure_logging", "request_id"]

#: Id of the request being served (None outside a request).
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# Attributes every LogRecord has; anything else was passed with ``extra=`` and is logged.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "request_id",
}

#: Loggers of the service and the library (their level is the ``log_level`` setting).
OWN_LOGGERS = ("app", "facecore")


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", "request_id", ...extra, "exc_info"}``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None) or request_id.get()
        if rid:
            out["request_id"] = rid
        for k, v in record.__dict__.items():
            if k not in _STANDARD and k not in out and not k.startswith("_"):
                out[k] = v if isinstance(v, str | int | float | bool | type(None)) else repr(v)
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        rid = getattr(record, "request_id", None) or request_id.get()
        return f"{text} [request {rid}]" if rid else text


def _formatter(kind: str) -> logging.Formatter:
    if kind == "json":
        return JsonFormatter()
    return _TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


def _stamp_request_ids() -> None:
    """Every record made while a request is served carries its id (``record.request_id``), set
    when the record is made, so a handler that formats it later (or elsewhere) still has it."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "_facecore", False):
        return

    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        return record

    make._facecore = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(make)


def configure_logging(kind: str = "json", level: str = "INFO") -> None:
    """Log the service's and uvicorn's records in ``kind`` (``json`` or ``text``) to stderr.

    Idempotent. Plain stream handlers already on the root logger (the CLI's ``basicConfig``)
    and uvicorn's own handlers get the formatter; if the root logger has no plain stream
    handler, one is added. Other handlers (e.g. pytest's capture) are left alone. uvicorn's
    access log is turned off: the service writes its own, with the request id
    (logger ``app.access``).
    """
    _stamp_request_ids()
    fmt = _formatter(kind)
    root = logging.getLogger()
    plain = [h for h in root.handlers if type(h) is logging.StreamHandler]
    if not plain:
        handler = logging.StreamHandler(sys.stderr)
        handler._facecore = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        plain = [handler]
    for h in plain:
        h.setFormatter(fmt)
    for name in ("uvicorn", "uvicorn.error"):
        for h in logging.getLogger(name).handlers:
            h.setFormatter(fmt)
    logging.getLogger("uvicorn.access").disabled = True
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(level)
