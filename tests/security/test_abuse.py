"""Abuse: rate limits as each vendor answered them, failed logins per address, slow
clients cut off by timeouts, and HTTP framing tricks (request smuggling) refused.

Rate limits and timeouts run on servers of their own with tight settings (a burst of
two, a one-second read timeout), so the catalogue server keeps the defaults. The
failed-login limit counts per client address: the attacker connects from 127.0.0.1,
an observer (the admin API, other clients) from 127.0.0.2.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from dialects import testing

from ..http.server import Server
from ..support import tenant_config
from .conftest import Catalogue
from .harness import (
    BOUND_MS,
    DIALECTS,
    assert_error,
    assert_fast,
    basic,
    credentials,
    exchange,
    gateway,
    ledger,
    new_invoice,
    send,
)

READ_TIMEOUT = 1.0
BURST = 2
RATE = {"per_second": 0.05, "burst": BURST}  # two at once, then one per 20 s
FAILED_BURST = 5
FAILURES = {"per_second": 1, "burst": FAILED_BURST}  # five failed logins, then one a second
OBSERVER = "127.0.0.2"


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Rate-limited acme and globex, unlimited initech (the slow clients' own), a one-second
    read timeout; no failed-login limit."""
    tenants = {
        "acme": tenant_config("acme", rate_limit=RATE),
        "globex": tenant_config("globex", rate_limit=RATE),
        "initech": tenant_config("initech"),
    }
    directory = tmp_path_factory.mktemp("tight")
    with gateway(directory, "tight", tenants, auth_failures=None,
                 read_timeout_seconds=READ_TIMEOUT) as server:  # fmt: skip
        yield server


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The failed-login limit, tight; no rate limit."""
    tenants = {"acme": tenant_config("acme")}
    directory = tmp_path_factory.mktemp("guarded")
    with gateway(directory, "guarded", tenants, auth_failures=FAILURES) as server:
        yield server


@pytest.fixture
async def observer() -> AsyncIterator[aiohttp.ClientSession]:
    """A client on another loopback address: a different client as the gateway counts."""
    connector = aiohttp.TCPConnector(local_addr=(OBSERVER, 0))
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


def create_request(dialect: str, invoice: int, tenant: str = "acme") -> tuple[str, str, str]:
    """(path, content type, body) of a good 10.00 create, in the dialect's own wire form."""
    request = testing.support(dialect).create(tenant, invoice, "10.00")
    return request.path, request.headers["Content-Type"], (request.body or b"").decode()


def list_path(dialect: str, invoice: int, tenant: str = "acme") -> str:
    return testing.support(dialect).listing(tenant, invoice).path


# --- per-credential rate limits ----------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_rate_limit_is_answered_as_each_vendor_did(tight: Server, dialect: str) -> None:
    """Harvest: 503 with Retry-After; the others 429 (urlKey TooManyRequests), per credential."""
    async with aiohttp.ClientSession() as http:
        invoice = await new_invoice(http, tight.url)
        other = await new_invoice(http, tight.url, tenant="globex")
        before = await ledger(http, tight.url, invoice)
        auth = credentials(dialect)
        for _ in range(BURST):
            served = await send(http, tight.url, "GET", list_path(dialect, invoice), headers=auth)
            assert served.status == 200, served.body
        path, content_type, body = create_request(dialect, invoice)

        answer = await send(http, tight.url, "POST", path,
                            headers={**auth, "Content-Type": content_type}, body=body)  # fmt: skip

        assert_error(dialect, answer, "rate_limited", message="Rate limit")
        assert 1 <= int(answer.headers["Retry-After"]) <= 20
        assert_fast(f"rate limit ({dialect})", answer)
        assert await ledger(http, tight.url, invoice) == before
        # Another credential has a bucket of its own.
        path = list_path(dialect, other, "globex")
        other_answer = await send(http, tight.url, "GET", path,
                                  headers=credentials(dialect, "globex"))  # fmt: skip
        assert other_answer.status == 200, other_answer.body


# --- failed logins, per client address ------------------------------------------------------


async def test_failed_logins_from_one_address_are_limited_in_each_dialects_shape(
    guarded: Server, observer: aiohttp.ClientSession
) -> None:
    invoice = await new_invoice(observer, guarded.url)
    before = await ledger(observer, guarded.url, invoice)
    async with aiohttp.ClientSession() as attacker:
        wrong = basic("acme@example.com", "guess")
        for _ in range(FAILED_BURST):
            answer = await send(attacker, guarded.url, "GET", list_path("harvest", invoice),
                                headers=wrong)  # fmt: skip
            assert_error("harvest", answer, "unauthenticated")

        # The bucket is empty: every request from the address, right credentials or not,
        # is refused before any secret is checked, as each dialect refuses too many.
        for dialect in ("harvest", "fastbill", "invoiless", "urlkey"):
            path, content_type, body = create_request(dialect, invoice)
            answer = await send(attacker, guarded.url, "POST", path, body=body,
                                headers={**credentials(dialect), "Content-Type": content_type})  # fmt: skip
            assert_error(dialect, answer, "rate_limited", message="failed authentications")
            assert_fast(f"failed-login limit ({dialect})", answer)
        answer = await send(attacker, guarded.url, "POST", "/authentication",
                            headers={"Content-Type": "application/json"},
                            body='{"strategy": "app-secret", "appId": "acme-app", "appSecret": "x"}')  # fmt: skip
        assert_error("urlkey", answer, "rate_limited")
        answer = await send(attacker, guarded.url, "GET", f"/gateway/v1/invoices/{invoice}",
                            headers={"Authorization": "Bearer guess"})  # fmt: skip
        assert_error("admin", answer, "rate_limited")

        # Liveness is still answered; another address is still served.
        assert (await send(attacker, guarded.url, "GET", "/healthz")).status == 200
        served = await send(observer, guarded.url, "GET", list_path("invoiless", invoice),
                            headers=credentials("invoiless"))  # fmt: skip
        assert served.status == 200
        assert await ledger(observer, guarded.url, invoice) == before

        # One second later a token is back, and the right credentials are served again.
        await asyncio.sleep(1.2)
        served = await send(attacker, guarded.url, "GET", list_path("harvest", invoice),
                            headers=credentials("harvest"))  # fmt: skip
        assert served.status == 200, served.body


# --- slow clients --------------------------------------------------------------------------


SLOW = "initech"  # the slow clients' tenant, which has no rate limit


def head(dialect: str, invoice: int, *extra: str) -> bytes:
    path, content_type, _ = create_request(dialect, invoice, SLOW)
    auth = "".join(f"{k}: {v}\r\n" for k, v in credentials(dialect, SLOW).items())
    lines = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}"
             f"Content-Type: {content_type}\r\n" + "".join(f"{e}\r\n" for e in extra) + "\r\n")  # fmt: skip
    return lines.encode()


def assert_cut_off_in_time(elapsed_ms: float) -> None:
    assert READ_TIMEOUT * 900 <= elapsed_ms <= READ_TIMEOUT * 1000 + 1500, elapsed_ms


async def test_a_client_trickling_its_headers_is_cut_off(tight: Server) -> None:
    """One byte every 50 ms would take seconds; the connection is closed after one."""
    async with aiohttp.ClientSession() as http:
        invoice = await new_invoice(http, tight.url, tenant=SLOW)
    data = head("invoiless", invoice)
    parts = [data[i : i + 1] for i in range(len(data))]

    raw = await exchange(tight.port, parts, pause=0.05, timeout=5)

    assert (raw.status, raw.closed) == (0, True), "closed without an answer"
    assert raw.parts_sent < len(parts)
    assert_cut_off_in_time(raw.elapsed_ms)


async def test_a_connection_that_sends_nothing_is_closed(tight: Server) -> None:
    raw = await exchange(tight.port, [], timeout=5)

    assert (raw.status, raw.closed) == (0, True)
    assert_cut_off_in_time(raw.elapsed_ms)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_client_trickling_its_body_gets_408_and_is_cut_off(
    tight: Server, dialect: str
) -> None:
    async with aiohttp.ClientSession() as http:
        invoice = await new_invoice(http, tight.url, tenant=SLOW)
        before = await ledger(http, tight.url, invoice)
        body = create_request(dialect, invoice, SLOW)[2].encode()
        parts = [head(dialect, invoice, f"Content-Length: {len(body)}")]
        parts += [body[i : i + 1] for i in range(len(body))]

        raw = await exchange(tight.port, parts, pause=0.05, timeout=5, wait_close=True)

        assert_error(dialect, raw.as_answer(), "request_timeout", message="not received")
        assert raw.closed, "the connection does not stay open for more"
        assert raw.parts_sent < len(parts)
        assert_cut_off_in_time(raw.elapsed_ms)
        assert await ledger(http, tight.url, invoice) == before


async def test_a_client_trickling_chunks_gets_408(tight: Server) -> None:
    async with aiohttp.ClientSession() as http:
        invoice = await new_invoice(http, tight.url, tenant=SLOW)
        before = await ledger(http, tight.url, invoice)
        body = create_request("urlkey", invoice, SLOW)[2].encode()
        parts = [head("urlkey", invoice, "Transfer-Encoding: chunked")]
        parts += [b"1\r\n%s\r\n" % body[i : i + 1] for i in range(len(body))] + [b"0\r\n\r\n"]

        raw = await exchange(tight.port, parts, pause=0.05, timeout=5)

        assert_error("urlkey", raw.as_answer(), "request_timeout")
        assert_cut_off_in_time(raw.elapsed_ms)
        assert await ledger(http, tight.url, invoice) == before


async def test_slow_clients_leave_the_server_serving(tight: Server) -> None:
    """Twenty connections trickling at once, and a normal client is served meanwhile."""
    async with aiohttp.ClientSession() as http:
        invoice = await new_invoice(http, tight.url, tenant=SLOW)
        data = head("invoiless", invoice)
        slow = [
            asyncio.create_task(
                exchange(
                    tight.port, [data[i : i + 1] for i in range(len(data))], pause=0.05, timeout=5
                )
            )  # fmt: skip
            for _ in range(20)
        ]
        await asyncio.sleep(0.2)
        served = await send(http, tight.url, "GET", "/healthz")
        assert served.status == 200 and served.elapsed_ms < BOUND_MS
        assert [r.status for r in await asyncio.gather(*slow)] == [0] * 20


# --- framing: request smuggling and oversized heads ---------------------------------------


SMUGGLED = (
    "0\r\n\r\nPOST /v1/invoices/{invoice}/payments HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    "api-key: acme-invoiless\r\nContent-Type: application/json\r\nContent-Length: 33\r\n\r\n"
    '{{"amount": 10, "method": "Cash"}}'
)
FRAMING = {
    "cl-and-te": ["Content-Length: {length}", "Transfer-Encoding: chunked"],
    "te-and-cl": ["Transfer-Encoding: chunked", "Content-Length: {length}"],
    "two-content-lengths": ["Content-Length: 5", "Content-Length: {length}"],
    "content-length-list": ["Content-Length: {length}, {length}"],
    "content-length-signed": ["Content-Length: +{length}"],
    "te-identity-and-cl": ["Transfer-Encoding: identity", "Content-Length: {length}"],
    "te-chunked-then-identity": ["Transfer-Encoding: chunked, identity"],
    "te-twice": ["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"],
    "te-not-chunked": ["Transfer-Encoding: xchunked"],
    "te-space-before-colon": ["Transfer-Encoding : chunked"],
    "te-folded": ["Transfer-Encoding:", " chunked"],
    "header-over-8k": ["X-Padding: " + "a" * 9000, "Content-Length: {length}"],
    "200-headers": [f"X-{i}: a" for i in range(200)] + ["Content-Length: {length}"],
}


@pytest.mark.parametrize("headers", FRAMING.values(), ids=FRAMING.keys())
async def test_ambiguous_framing_is_refused_and_nothing_is_smuggled(
    catalogue: Catalogue, http: aiohttp.ClientSession, headers: list[str]
) -> None:
    """Refused by the HTTP parser, before any route: its own plain 400, and a close.

    The body carries a complete second request (a payment); if any reading of the
    framing let it through, the ledger would show it.
    """
    invoice = await new_invoice(http, catalogue.url)
    before = await ledger(http, catalogue.url, invoice)
    body = SMUGGLED.format(invoice=invoice).encode()
    lines = [line.format(length=len(body)) for line in headers]
    data = (f"POST /v1/invoices/{invoice}/payments HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "api-key: acme-invoiless\r\nContent-Type: application/json\r\n"
            + "".join(f"{line}\r\n" for line in lines) + "\r\n").encode() + body  # fmt: skip

    raw = await exchange(catalogue.port, [data], wait_close=True)

    assert raw.status == 400, raw.body[:300]
    assert raw.headers["Content-Type"].startswith("text/plain")
    assert b"Traceback" not in raw.body
    assert raw.closed
    name = next(k for k, v in FRAMING.items() if v is headers)
    assert_fast(f"framing {name}", raw.as_answer())
    await asyncio.sleep(0.05)  # anything smuggled would have been served by now
    assert await ledger(http, catalogue.url, invoice) == before


async def test_the_servers_answer_after_the_abuse(
    catalogue: Catalogue, tight: Server, guarded: Server, tmp_path: Path
) -> None:
    for url in (catalogue.url, tight.url, guarded.url):
        async with aiohttp.ClientSession() as http:
            assert (await send(http, url, "GET", "/healthz")).status == 200
    assert "unexpected error" not in tight.output() + guarded.output()
