"""Log lines: the text form of an event, and lines written a loop turn at a time."""

from __future__ import annotations

import ast
import asyncio
import logging
import re
import sys
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.observability.logs import LineHandler, TextFormatter


class Stream:
    """A stream that keeps each write apart."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> None:
        self.writes.append(text)

    def flush(self) -> None:
        pass


@pytest.fixture
def stream() -> Iterator[Stream]:
    found = Stream()
    handler = LineHandler(found)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("tests.logs")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    yield found
    logger.removeHandler(handler)
    logger.propagate = True


async def test_the_lines_of_one_loop_turn_leave_in_one_write(stream: Stream) -> None:
    log = logging.getLogger("tests.logs")
    log.info("one")
    log.info("two")
    assert stream.writes == []  # waiting for the loop's next turn
    await asyncio.sleep(0)
    assert stream.writes == ["one\ntwo\n"]
    log.info("three")
    await asyncio.sleep(0)
    assert stream.writes == ["one\ntwo\n", "three\n"]


async def test_a_warning_is_written_at_once_after_what_waited(stream: Stream) -> None:
    log = logging.getLogger("tests.logs")
    log.info("before")
    log.warning("trouble")
    assert stream.writes == ["before\ntrouble\n"]


async def test_a_line_logged_off_the_loop_is_written_at_once(stream: Stream) -> None:
    log = logging.getLogger("tests.logs")
    log.info("on the loop")
    thread = threading.Thread(target=log.info, args=("off the loop",))
    thread.start()
    thread.join()
    assert stream.writes == ["on the loop\noff the loop\n"]


def test_without_a_running_loop_each_line_is_written_at_once(stream: Stream) -> None:
    log = logging.getLogger("tests.logs")
    log.info("first")
    log.info("second")
    assert stream.writes == ["first\n", "second\n"]


def test_a_loop_that_ended_before_its_turn_holds_no_later_line(stream: Stream) -> None:
    log = logging.getLogger("tests.logs")

    loop = asyncio.new_event_loop()

    def log_and_stop() -> None:
        log.info("in a loop that stops")
        loop.stop()  # no turn after this one

    loop.call_soon(log_and_stop)
    loop.run_forever()
    loop.close()
    assert stream.writes == []

    async def log_line() -> None:
        log.info("in the next one")

    asyncio.run(log_line())
    assert stream.writes == ["in a loop that stops\nin the next one\n"]


async def test_lines_still_waiting_are_written_by_a_flush(stream: Stream) -> None:
    log = logging.getLogger("tests.logs")
    log.info("last words")
    for handler in log.handlers:
        handler.flush()  # what logging.shutdown does at exit
    assert stream.writes == ["last words\n"]


def _record(msg: str, **fields: object) -> logging.LogRecord:
    record = logging.LogRecord("gateway", logging.INFO, "", 0, msg, (), None)
    record.created, record.msecs = 1_767_225_600.25, 250.0
    record.fields = fields
    return record


def test_text_lines_quote_only_what_needs_it() -> None:
    record = _record(
        "request", status=201, duration_ms=0.5, path="/v1/payments", tenant=None,
        note="two words", empty="", flag=True,
    )  # fmt: skip
    assert TextFormatter().format(record) == (
        "2026-01-01T00:00:00.250Z INFO request status=201 duration_ms=0.5 path=/v1/payments"
        " note='two words' empty='' flag=True"
    )


def test_a_library_line_names_its_logger() -> None:
    record = logging.LogRecord("aiohttp.access", logging.INFO, "", 0, "GET %s", ("/",), None)
    record.created, record.msecs = 1_767_225_600.0, 0.0
    assert TextFormatter().format(record) == (
        "2026-01-01T00:00:00.000Z INFO GET / logger=aiohttp.access"
    )


# --- every value escaped: a caller's text never makes a line, or a field, of its own -------

_FIELD = re.compile(r""" (\w+)=('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^ '"]+)""")
_STAMP = "2026-01-01T00:00:00.250Z"
# Text a caller chooses, heavy in what could break a line: controls, quotes, separators.
_HOSTILE = st.text(
    st.one_of(
        st.sampled_from(list("\n\r\x1b\x07\x00\x85\u2028 =\"'\\")),
        st.characters(codec="utf-8"),
    ),
    max_size=40,
)


def _fields(line: str, prefix: str) -> dict[str, str]:
    assert line.startswith(prefix), line
    rest = line[len(prefix) :]
    found = {}
    while rest:
        match = _FIELD.match(rest)
        assert match is not None, rest
        key, text = match.groups()
        found[key] = ast.literal_eval(text) if text[0] in "'\"" else text
        rest = rest[match.end() :]
    return found


@settings(max_examples=300)
@given(path=_HOSTILE, tenant=_HOSTILE, reason=_HOSTILE, agent=_HOSTILE)
def test_a_text_line_is_one_line_whose_fields_read_back(
    path: str, tenant: str, reason: str, agent: str
) -> None:
    values = {"path": path, "tenant": tenant, "reason": reason, "user_agent": agent}

    line = TextFormatter().format(_record("request", status=500, **values))

    assert line.isprintable(), line
    assert _fields(line, f"{_STAMP} INFO request") == {"status": "500", **values}


@settings(max_examples=300)
@given(path=_HOSTILE)
def test_a_plain_message_is_one_line_that_reads_back(path: str) -> None:
    record = logging.LogRecord(
        "gateway", logging.ERROR, "", 0, "unexpected error on %s %s", ("GET", path), None
    )
    record.created, record.msecs = 1_767_225_600.25, 250.0

    line = TextFormatter().format(record)

    assert line.isprintable(), line
    message = line.removeprefix(f"{_STAMP} ERROR ")
    read = ast.literal_eval(message) if message[:1] in "'\"" else message
    assert read == f"unexpected error on GET {path}"


@settings(max_examples=100)
@given(reason=_HOSTILE)
def test_a_traceback_cannot_write_a_line_of_its_own(reason: str) -> None:
    try:
        raise RuntimeError(f"{reason}\n{_STAMP} INFO request status=200")
    except RuntimeError:
        record = logging.LogRecord(
            "gateway", logging.ERROR, "", 0, "unexpected error", (), sys.exc_info()
        )

    first, *rest = TextFormatter().format(record).split("\n")

    assert rest and all(line.startswith("  ") and line.isprintable() for line in rest), rest
    assert first.endswith(" ERROR unexpected error")
