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

from app import observability
from app.observability import json_line

UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
OWN_LOGGERS = ("app", "engine")  # warnings and errors of the service itself
REQUEST_LOG = "app.requests"  # its message is a JSON object already (app.observability)


class JsonFormatter(logging.Formatter):
    """A record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        head: dict[str, object] = {
            "level": record.levelname.lower(),
            "time": iso_time(record.created),
            "logger": record.name,
        }
        message = record.getMessage()
        if record.name == REQUEST_LOG and message.startswith("{") and message.endswith("}"):
            return request_line(record.created, message, record.levelname.lower())
        info = observability.current()
        if info is not None:
            head["request_id"] = info.request_id
        head["message"] = message
        if record.exc_info:
            head["error"] = self.formatException(record.exc_info)
        return json.dumps(head, separators=(",", ":"), default=str)


def request_line(created: float, message: str, level: str = "info") -> str:
    """The request log's line from its record: the head, then the request's own object
    (with its request_id) spliced in, not parsed again."""
    return json_line(_head(created, level))[:-1] + "," + message[1:]


def _head(created: float, level: str = "info") -> dict[str, object]:
    """The fields every line starts with, for a request log line made at ``created``."""
    return {"level": level, "time": iso_time(created), "logger": REQUEST_LOG}


# The last whole second formatted, with its text: one tuple, replaced whole, so a thread
# never reads one second's number with another's text.
_last_second: tuple[int, str] = (-1, "")


def iso_time(created: float) -> str:
    """``created`` as ISO 8601 in UTC to the millisecond, as ``JsonFormatter`` writes it;
    the date and time of day made once a second (a request's line needs it each time)."""
    global _last_second
    whole = int(created)
    micros = round((created - whole) * 1e6)  # rounded as datetime rounds, then cut
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    second, text = _last_second
    if second != whole:
        text = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _last_second = (whole, text)
    return f"{text}.{micros // 1000:03d}+00:00"


class RequestLogHandler(logging.StreamHandler):
    """The request log's own stderr handler, which can also take a line straight.

    ``write_line`` writes what ``format`` would make of the request's record, without
    the record: building a LogRecord, passing it through the logger and the handler and
    encoding the line twice took about 40 µs of a seed request's 500 µs in-process
    (CPU time, in the request loop); this takes about half. ``app.observability`` uses
    it only while this handler is the logger's only one and nothing filters; otherwise
    records go through logging as usual.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setFormatter(JsonFormatter())

    def takes_lines(self) -> bool:
        """Whether ``write_line`` writes what ``handle`` would: this handler's own format,
        nothing filtering, info let through."""
        return (type(self.formatter) is JsonFormatter and not self.filters
                and self.level <= logging.INFO)

    def write_line(self, created: float, fields: dict[str, object]) -> bool:
        """Write the request's line at info; False if nothing was written (the caller then
        logs it the usual way, which reports the error as logging does)."""
        text = json_line({**_head(created), **fields}) + self.terminator
        written = False
        try:
            with self.lock:  # type: ignore[union-attr]  # made by Handler.__init__
                self.stream.write(text)
                written = True
                self.stream.flush()
        except Exception:  # noqa: BLE001 - a closed or broken stream
            if not written:
                return False  # logging's own path tries, and reports
            # written but not flushed: reported as logging reports it, not written again
            self.handleError(logging.makeLogRecord(
                {"name": REQUEST_LOG, "levelno": logging.INFO, "levelname": "INFO",
                 "msg": text.rstrip("\n")}))
        return True


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
