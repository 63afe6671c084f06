"""Request ids, structured logs and the request metrics (docs/operations.md).

Every HTTP request gets an id: the caller's ``X-Request-ID`` if it is sane (a proxy
such as nginx sets one), else a fresh one. It is returned in the ``X-Request-ID``
response header and carried by every log line written while the request runs, so
one request's lines can be found across the server's log. ``LAOWU_LOG_FORMAT=json``
writes one JSON object per line (for a log shipper); the default is plain text.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
import time
import uuid
from typing import Any

from litestar.datastructures import MutableScopeHeaders
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from web.ops.metrics import Registry

REQUEST_ID_HEADER = "X-Request-ID"
# Letters, digits and a few separators, at most 64: anything else (spaces, quotes,
# newlines that could forge log lines) is replaced by our own id.
_SANE_ID = re.compile(r"^[A-Za-z0-9._:@+-]{1,64}$")

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
access_log = logging.getLogger("laowu.access")


def sane_request_id(value: str | None) -> str:
    if value and _SANE_ID.match(value):
        return value
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Put the current request's id (or "-") on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get() or "-"
        return True


# Attributes every LogRecord has; anything else was passed in ``extra=``.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "color_message",  # uvicorn's copy of the message with terminal colours
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", None) or request_id.get(),
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (redirections, test capture)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
_HANDLER_NAME = "laowu"


def configure_logging(
    log_format: str | None = None, level: int = logging.INFO, *, force: bool = True
) -> None:
    """One handler on the root logger (replacing ours if called again), text or JSON.

    Without ``force``, like ``logging.basicConfig``: nothing happens when the root
    logger already has handlers (ours from an earlier call, or a host's such as
    pytest's, whose captured output must stay as it was).
    """
    root = logging.getLogger()
    if not force and root.handlers:
        return
    chosen = (log_format or os.environ.get("LAOWU_LOG_FORMAT") or "text").strip().lower()
    handler = _StderrHandler()
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if chosen == "json" else logging.Formatter(TEXT_FORMAT))
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


def status_class(status: int) -> str:
    return f"{status // 100}xx"


def observe(app: ASGIApp, registry: Registry) -> ASGIApp:
    """Wrap the whole application (outside routing, so 404s count too)."""

    async def observed(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        incoming = None
        for name, value in scope["headers"]:
            if name.lower() == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        rid = sane_request_id(incoming)
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableScopeHeaders.from_message(message)[REQUEST_ID_HEADER] = rid
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("path_template") or "unmatched"
            method = str(scope.get("method", "GET"))
            registry.observe_request(method, route, status_class(status), elapsed)
            access_log.info(
                "%s %s %s %.1fms",
                method,
                scope.get("path", ""),
                status,
                elapsed * 1000,
                extra={"method": method, "route": route, "status": status, "ms": elapsed * 1000},
            )
            request_id.reset(token)

    return observed
