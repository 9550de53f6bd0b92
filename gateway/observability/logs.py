"""Log lines: named events with fields, written as JSON objects or as text, one a line.

`event("breaker_open", logging.WARNING, tenant="acme")` is the one way the
gateway logs. The request in flight (see `trace`) adds its id to every line it
causes. Values are the caller's to choose: never pass a secret.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
from typing import Any, Literal

import orjson

from gateway.observability import trace

LogFormat = Literal["json", "text"]
LEVELS = ("debug", "info", "warning", "error")

log = logging.getLogger("gateway")


def event(name: str, level: int = logging.INFO, /, **fields: Any) -> None:
    """Log the event `name` with `fields` (and the current request's id, if any)."""
    if log.isEnabledFor(level):
        current = trace.CURRENT.get()
        if current is not None and "request_id" not in fields:
            fields["request_id"] = current.request_id
        # The record made directly: `Logger.log` would walk the stack for a caller's file
        # and line, which no formatter here shows (a share of every access log line).
        record = logging.LogRecord(log.name, level, _NO_CALLER, 0, name, (), None)
        record.fields = fields
        log.handle(record)


_NO_CALLER = "(unknown file)"
_second: tuple[int, str] = (-1, "")  # the last whole second formatted, and its text


def _stamp(record: logging.LogRecord) -> str:
    global _second
    whole = int(record.created)
    if _second[0] != whole:
        _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{_second[1]}.{int(record.msecs):03d}Z"


def _parts(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] | None = getattr(record, "fields", None)
    if fields is not None:
        return {"event": record.msg, **fields}
    # A line from a library, or from code that logs plain messages.
    parts: dict[str, Any] = {"event": "message", "message": record.getMessage()}
    if record.name != "gateway":
        parts["logger"] = record.name
    return parts


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, event, then the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": _stamp(record), "level": record.levelname.lower(), **_parts(record)}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """`time LEVEL event key=value ...`, for a person reading a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] | None = getattr(record, "fields", None)
        if fields is None:
            parts = _parts(record)
            del parts["event"]
            name, fields = parts.pop("message"), parts
        else:
            name = record.msg
        line = f"{_stamp(record)} {record.levelname} {_message(name)}"
        for key, value in fields.items():
            if value is not None:
                # Numbers are never quoted: no look at their text (most of an access line).
                line += f" {key}={value if type(value) in _NUMBERS else _text(value)}"
        if record.exc_info:
            line += "\n" + _traceback(self.formatException(record.exc_info))
        return line


_NUMBERS = frozenset((int, float))
# A value holding one of these, or any character that is not printable (a newline, CR,
# ESC, ...), is written quoted, with those escaped: whatever a caller puts in a path or
# a header, a line stays one line and its fields stay its own.
_QUOTED = re.compile(r"[ =\"'\\]")


def _text(value: Any) -> str:
    text = str(value)
    return repr(text) if not text or _QUOTED.search(text) or not text.isprintable() else text


def _message(value: Any) -> str:
    """A plain message (a library's line) keeps its spaces, and is quoted as a value is
    when it holds a character that could pass for a field or a line of its own."""
    text = str(value)
    return repr(text) if _MESSAGE_QUOTED.search(text) or not text.isprintable() else text


_MESSAGE_QUOTED = re.compile(r"[=\"'\\]")


def _traceback(text: str) -> str:
    """A traceback's lines, indented, each escaped: an exception's message is no log line."""
    return "\n".join("  " + repr(line)[1:-1] for line in text.splitlines())


class LineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Lines written in batches: those logged in one turn of the event loop, in one write.

    A line logged on the event loop waits for the loop's next turn, so the access lines
    of all the requests answered in one turn leave together (one system call, where a
    line each was one per request). A warning or worse, and any line logged off the
    loop, is written at once, after whatever waited before it. Lines still waiting when
    the process exits are written by `logging.shutdown`.
    """

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._pending: list[str] = []
        self._scheduled: asyncio.AbstractEventLoop | None = None  # a flush is due on it

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._pending.append(self.format(record) + self.terminator)
        except Exception:
            self.handleError(record)
            return
        if record.levelno >= logging.WARNING:
            self.flush()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        if self._scheduled is not loop:  # (a loop that ended before its turn: another)
            self._scheduled = loop
            loop.call_soon(self.flush)

    def flush(self) -> None:
        self.acquire()
        try:
            self._scheduled = None
            if self._pending:
                text = "".join(self._pending)
                self._pending.clear()
                try:
                    self.stream.write(text)
                except Exception:
                    self.handleError(logging.makeLogRecord({"msg": text}))
            super().flush()
        finally:
            self.release()


def setup(fmt: LogFormat = "text", level: str = "info") -> None:
    """Send every log line to stderr in `fmt`, from `level` up."""
    handler = LineHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # No formatter prints a record's thread or process: not worth looking up per line.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
