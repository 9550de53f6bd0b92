"""In-process checks of the pieces the catalogue relies on, at their edges.

The catalogue proves refusals over the network; these prove the new checks do not
refuse what they should take (documents exactly at each limit), and the behaviour of
the failed-login bucket and the log filter, without a server.
"""

from __future__ import annotations

import logging
import sys

import pytest
from aiohttp.http_exceptions import BadHttpMessage

from dialects import _json, _xml
from dialects.errors import BadRequest, TooManyRequests
from gateway.__main__ import ClientFaults
from gateway.access.limits import RateLimiter
from gateway.config import RateLimit, Server
from gateway.ledger.contract import Principal


def nested(depth: int) -> bytes:
    return b"<a>" * depth + b"</a>" * depth


@pytest.mark.parametrize(
    "document",
    [
        nested(32),
        b"<p" + b"".join(b' a%d="v>w"' % i for i in range(16)) + b"/>",
        b"<p>" + b"<x/>" * 9_999 + b"</p>",
        b"<p>" + b"<x>t</x>" * 9_999 + b"</p>",
        b"<p><![CDATA[" + b"</x>" * 20_000 + b"]]></p>",
        b'<p xmlns:n="urn:x" n:a="1" n:b="2"><n:x/></p>',
    ],
    ids=["depth-32", "16-attributes-with-gt", "10000-empty", "10000-full", "cdata-end-tags",
         "namespaces"],
)  # fmt: skip
def test_xml_exactly_at_each_limit_is_taken(document: bytes) -> None:
    assert _xml.parse(document) is not None


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (nested(33), "deeper than 32"),
        (b"<p" + b"".join(b"\n a%d = 'v'" % i for i in range(17)) + b"/>", "16 attr"),
        (b"<p>" + b"<x/>" * 10_000 + b"</p>", "10000 elements"),
    ],
    ids=["depth-33", "17-attributes-spaced", "10001-elements"],
)
def test_xml_one_past_each_limit_is_refused(document: bytes, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        _xml.parse(document)


def test_limits_come_from_the_context_when_not_given() -> None:
    token = _xml.LIMITS.set(_xml.Limits(max_depth=4))
    depth = _json.DEPTH.set(4)
    try:
        with pytest.raises(BadRequest, match="deeper than 4"):
            _xml.parse(nested(5))
        with pytest.raises(BadRequest, match="nested too deeply"):
            _json.loads(b"[[[[[1]]]]]")
        assert _xml.parse(nested(4)) is not None
    finally:
        _xml.LIMITS.reset(token)
        _json.DEPTH.reset(depth)
    assert _xml.parse(nested(32)) is not None


ME = ("harvest", "login", "me@example.com")


def test_an_identity_is_refused_once_its_failures_are_spent_and_served_as_it_refills() -> None:
    now = [100.0]
    limiter = RateLimiter({}, clock=lambda: now[0], failures=RateLimit(per_second=1, burst=3))
    for _ in range(3):
        limiter.check("10.0.0.1", ME)
        limiter.failed("10.0.0.1", ME)
    with pytest.raises(TooManyRequests) as refused:
        limiter.check("10.0.0.1", ME)
    assert refused.value.retry_after == 1
    limiter.check("10.0.0.2", ME)  # from another address it has a bucket of its own
    limiter.check("10.0.0.1", ("harvest", "login", "you@example.com"))  # so has another
    limiter.failed("10.0.0.1", ME)  # failing again while empty is counted, never raises
    now[0] += 2.5
    limiter.check("10.0.0.1", ME)
    limiter.take(Principal("acme", "harvest", "x", credential="x"))  # no tenant limit


def test_no_failed_login_limit_when_configured_off() -> None:
    limiter = RateLimiter({}, failures=None)
    for _ in range(1000):
        limiter.failed("10.0.0.1", ME)
    limiter.check("10.0.0.1", ME)


def test_server_defaults() -> None:
    server = Server()
    assert (server.read_timeout_seconds, server.xml_max_depth, server.json_max_depth) == (
        10.0,
        32,
        32,
    )
    assert (server.xml_max_elements, server.xml_max_attributes) == (10_000, 16)
    assert server.auth_failures == RateLimit(per_second=1, burst=20)
    assert server.auth_address_failures == RateLimit(per_second=2, burst=100)
    assert server.auth_global_failures == RateLimit(per_second=10, burst=100)


def test_malformed_requests_are_logged_in_one_info_line() -> None:
    try:
        raise BadHttpMessage("Transfer-Encoding can't be present with Content-Length")
    except BadHttpMessage:
        record = logging.LogRecord(
            "aiohttp.server", logging.ERROR, __file__, 1, "Error handling request", (),
            sys.exc_info(),
        )  # fmt: skip
    assert ClientFaults().filter(record)
    assert (record.levelno, record.exc_info) == (logging.INFO, None)
    assert "Transfer-Encoding can't be present" in record.getMessage()
    other = logging.LogRecord("aiohttp.server", logging.ERROR, __file__, 1, "boom", (), None)
    assert ClientFaults().filter(other) and other.levelno == logging.ERROR
