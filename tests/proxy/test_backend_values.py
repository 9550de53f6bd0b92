"""A backend's dates at the calendar's edges, its digits that are not ASCII, its Retry-After.

A backend answering a date UTC cannot hold is a backend failure (502 in the caller's
dialect), never a 500. A backend's framing and Retry-After are numbers in ASCII digits
or unreadable: a `Content-Length: ²` is a 502 and a `Retry-After: ²` is read as no
advice. However long a backend asks callers to wait, in seconds or as an HTTP-date,
callers are told at most `upstream.MAX_RETRY_AFTER` seconds. No case leaves a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from gateway.proxy.upstream import MAX_RETRY_AFTER, retry_after

from ..clients import Reply
from ..dialects.test_calendar import EDGES
from ..registry import ALL
from .conftest import ProxyFactory
from .fake import FakeBackend, invoiless_payment, json_answer, status_answer, urlkey_backend
from .harness import lookup, upstream
from .test_faults import LIST, list_as, proxied, shaped
from .test_http_client import Backend, answering, backend

CALLERS = ALL
OUT_OF_RANGE_MS = ["/Date(253402300800000+0000)/", "/Date(-62135596800001)/"]


def no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not bad, [r.getMessage() for r in bad]


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("value", EDGES)
async def test_a_backend_date_utc_cannot_hold_answers_502_in_the_callers_dialect(
    caller: str,
    value: str,
    make_proxy: ProxyFactory,
    fake: FakeBackend,
    caplog: pytest.LogCaptureFixture,
) -> None:
    proxy, invoice = await proxied(make_proxy, fake)
    fake.answer = json_answer([invoiless_payment(paidAt=value)])

    reply = await list_as(caller, proxy, invoice)

    status, message = shaped(caller, reply)
    assert status == 502 and "unreadable" in message.lower(), message
    assert fake.calls() == [LIST]
    no_traceback(caplog)


@pytest.mark.parametrize("value", EDGES)
async def test_a_urlkey_backend_datetime_utc_cannot_hold_answers_502(
    value: str, make_proxy: ProxyFactory, fake: FakeBackend, caplog: pytest.LogCaptureFixture
) -> None:
    fake.answer = urlkey_backend()
    proxy = await make_proxy(upstream("urlkey", fake.url, retries=0))
    invoice = (await lookup(proxy, "urlkey", "invoice", "66c1f0e2a1b2c3d4e5f60700"))["dialect_ids"]
    good = await list_as("invoiless", proxy, invoice["harvest"])
    assert good.status == 200, good.body
    payment = {"_id": "66c1f0e2a1b2c3d4e5f60718", "amount": 12.5, "paymentDate": value}
    fake.answer = json_answer({"payments": [payment]})

    reply = await list_as("invoiless", proxy, invoice["harvest"])

    status, message = shaped("invoiless", reply)
    assert status == 502, message
    no_traceback(caplog)


# --- Retry-After ------------------------------------------------------------------------


def http_date(year: int) -> str:
    return format_datetime(datetime(year, 1, 1, tzinfo=UTC), usegmt=True)


@pytest.mark.parametrize(
    ("advice", "told"),
    [
        ("999999", str(MAX_RETRY_AFTER)),
        ("99999999999999999999999", "1"),  # past any count the gateway reads: no advice
        (str(MAX_RETRY_AFTER), str(MAX_RETRY_AFTER)),
        ("7", "7"),
        (http_date(2999), str(MAX_RETRY_AFTER)),
        (http_date(2000), "1"),  # a date gone by: try again now, as soon as may be
        ("\uff15", "1"),  # full-width 5, sent as UTF-8: unreadable
        ("\u00b2", "1"),
        ("-5", "1"),
        ("5.5", "1"),
        ("tomorrow", "1"),
    ],
)
async def test_a_backends_retry_after_reaches_the_caller_bounded(
    advice: str,
    told: str,
    make_proxy: ProxyFactory,
    fake: FakeBackend,
    caplog: pytest.LogCaptureFixture,
) -> None:
    proxy, invoice = await proxied(make_proxy, fake)
    fake.answer = status_answer(503, **{"Retry-After": advice})

    reply = await list_as("invoiless", proxy, invoice)

    assert shaped("invoiless", reply) == (503, "unavailable: The backend is busy")
    assert reply.headers["Retry-After"] == told
    no_traceback(caplog)


# --- raw backends: bytes aiohttp would not send -----------------------------------------


@asynccontextmanager
async def raw_proxy(
    make_proxy: ProxyFactory, answer: bytes
) -> AsyncIterator[tuple[Backend, Reply]]:
    """A proxy in front of a raw backend, and the answer to one list call.

    The backend answers the proxy's look-up of the invoice (a list) soundly, then
    `answer` to everything.
    """
    body = json.dumps([invoiless_payment()]).encode()
    sound = answering(head(*OK, b"Content-Length: %d" % len(body)) + body)
    hostile = answering(answer, close=True)

    async def script(writer: asyncio.StreamWriter, request: bytes) -> None:
        first = len(served.requests) == 1
        await (sound if first else hostile)(writer, request)

    async with backend(script) as served:
        proxy = await make_proxy(upstream("invoiless", served.url, retries=0, timeout=2))
        invoice = (await lookup(proxy, "invoiless", "invoice", "inv-1"))["dialect_ids"]["harvest"]
        yield served, await list_as("invoiless", proxy, invoice)


def head(*lines: bytes) -> bytes:
    return b"\r\n".join(lines) + b"\r\n\r\n"


OK = (b"HTTP/1.1 200 OK", b"Content-Type: application/json")


LATIN1_DIGITS = [b"\xb2", b"\xb3", b"\xb9", b"1\xb2"]  # superscripts: isdigit() in latin-1 text


@pytest.mark.parametrize("digits", LATIN1_DIGITS)
async def test_a_content_length_in_digits_that_are_not_ascii_answers_502(
    digits: bytes, make_proxy: ProxyFactory, caplog: pytest.LogCaptureFixture
) -> None:
    answer = head(b"HTTP/1.1 200 OK", b"Content-Type: application/json",
                  b"Content-Length: " + digits) + b"[]"  # fmt: skip

    async with raw_proxy(make_proxy, answer) as (served, reply):
        assert served.requests
        assert shaped("invoiless", reply)[0] == 502

    no_traceback(caplog)


@pytest.mark.parametrize("digits", [*LATIN1_DIGITS, b"\xef\xbc\x95"])
async def test_a_retry_after_in_digits_that_are_not_ascii_is_no_advice(
    digits: bytes, make_proxy: ProxyFactory, caplog: pytest.LogCaptureFixture
) -> None:
    answer = head(b"HTTP/1.1 503 Service Unavailable", b"Content-Length: 0",
                  b"Retry-After: " + digits)  # fmt: skip

    async with raw_proxy(make_proxy, answer) as (_, reply):
        assert shaped("invoiless", reply) == (503, "unavailable: The backend is busy")
        assert reply.headers["Retry-After"] == "1"

    no_traceback(caplog)


@pytest.mark.parametrize("size", [b"\xb2", b"1\xb3", b"+1", b"0x1", b"1_0"])
async def test_a_chunk_size_that_is_not_ascii_hex_answers_502(
    size: bytes, make_proxy: ProxyFactory, caplog: pytest.LogCaptureFixture
) -> None:
    answer = head(b"HTTP/1.1 200 OK", b"Content-Type: application/json",
                  b"Transfer-Encoding: chunked") + size + b"\r\n[]\r\n0\r\n\r\n"  # fmt: skip

    async with raw_proxy(make_proxy, answer) as (_, reply):
        assert shaped("invoiless", reply)[0] == 502

    no_traceback(caplog)


async def test_a_raw_backends_readable_answer_is_served(
    make_proxy: ProxyFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """The raw backend itself is sound: a well-framed answer goes through."""
    body = json.dumps([invoiless_payment()]).encode()
    answer = head(b"HTTP/1.1 200 OK", b"Content-Type: application/json",
                  b"Content-Length: %d" % len(body)) + body  # fmt: skip

    async with raw_proxy(make_proxy, answer) as (_, reply):
        assert reply.status == 200, reply.body
        assert [p["amount"] for p in reply.json()] == [12.5]
    await asyncio.sleep(0)
    no_traceback(caplog)


@pytest.mark.parametrize(
    ("advice", "seconds"),
    [
        ("Thu, 01 Jan 1970 00:00:30 GMT", 30),
        ("Thu, 01 Jan 1970 00:00:29 +0000", 29),
        ("Thursday, 01-Jan-70 00:00:45 GMT", 45),
        ("Thu Jan  1 00:00:59 1970", 59),
        ("Thu, 01 Jan 1970 00:01:01 GMT", MAX_RETRY_AFTER),
        ("Wed, 31 Dec 1969 23:59:59 GMT", 0),
        ("Thu, 01 Jan 99999 00:00:00 GMT", None),
        ("Thu, 01 Jan 1970 00:00:\u00b3\u00b2 GMT", None),
        ("", None),
    ],
)
def test_an_http_date_counts_the_seconds_until_it_by_the_clock_given(
    advice: str, seconds: int | None
) -> None:
    assert retry_after({"Retry-After": advice}, now=lambda: 0.0) == seconds
