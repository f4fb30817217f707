"""One log format for everything a replica writes: a JSON object per line.

Every line has ``level``, ``time`` (ISO 8601, UTC, milliseconds), ``logger`` and, inside a
request, its ``request_id``; then ``message`` (and ``error`` with a traceback), or, for
the request log (``app.requests``, already a JSON object), that object's fields.
uvicorn's own loggers, its access log included, are switched to the same format when the
app is created (uvicorn configures them before it imports the app), so a collector reads
one format; a host that configured logging itself keeps its configuration for the rest.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

import orjson

from app import observability

UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
OWN_LOGGERS = ("app", "engine")  # warnings and errors of the service itself
REQUEST_LOG = "app.requests"  # its message is a JSON object already (app.observability)


class JsonFormatter(logging.Formatter):
    """A record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        head: dict[str, object] = {
            "level": record.levelname.lower(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "logger": record.name,
        }
        message = record.getMessage()
        if record.name == REQUEST_LOG and message.startswith("{") and message.endswith("}"):
            # the request's own object (with its request_id): spliced, not parsed again
            return orjson.dumps(head).decode()[:-1] + "," + message[1:]
        info = observability.current()
        if info is not None:
            head["request_id"] = info.request_id
        head["message"] = message
        if record.exc_info:
            head["error"] = self.formatException(record.exc_info)
        return json.dumps(head, separators=(",", ":"), default=str)


def install() -> None:
    """JSON for uvicorn's handlers, and a JSON stderr handler for the service's loggers
    unless the host configured logging (a root handler) itself. Idempotent."""
    formatter = JsonFormatter()
    for name in UVICORN_LOGGERS:
        for handler in logging.getLogger(name).handlers:
            handler.setFormatter(formatter)
    if logging.getLogger().handlers:
        return
    for name in OWN_LOGGERS:
        logger = logging.getLogger(name)
        if not any(getattr(h, "_json_stderr", False) for h in logger.handlers):
            handler = logging.StreamHandler(sys.stderr)
            handler._json_stderr = True  # type: ignore[attr-defined]
            handler.setFormatter(formatter)
            logger.addHandler(handler)
            logger.propagate = False
            if logger.level == logging.NOTSET:
                logger.setLevel(logging.INFO)
