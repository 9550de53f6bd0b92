"""Abuse: rate limits as each vendor answered them, failed logins per address, slow
clients cut off by timeouts, and HTTP framing tricks (request smuggling) refused.

Rate limits and timeouts run on servers of their own with tight settings (a burst of
two, a one-second read timeout), so the catalogue server keeps the defaults. The
failed-login limit counts per client address and identity: the clients sharing an
address connect from 127.0.0.1, an observer (the admin API, other clients) from
127.0.0.2, and a trusted proxy, naming clients in X-Forwarded-For, from 127.0.0.3.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

import dialects
from dialects import testing
from dialects.unit import ApiKeyAuth, BasicAuth

from ..http.server import Server
from ..support import tenant_config
from .conftest import Catalogue
from .harness import (
    ADMIN,
    DIALECTS,
    assert_error,
    basic,
    credentials,
    exchange,
    gateway,
    ledger,
    new_invoice,
    send,
    timed,
)

READ_TIMEOUT = 1.0
BURST = 2
RATE = {"per_second": 0.05, "burst": BURST}  # two at once, then one per 20 s
FAILED_BURST = 5
FAILURES = {"per_second": 1, "burst": FAILED_BURST}  # five failed logins, then one a second
OBSERVER = "127.0.0.2"
PROXY = "127.0.0.3"


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
    with gateway(directory, "tight", tenants, auth_failures=None, auth_address_failures=None, auth_global_failures=None,
                 read_timeout_seconds=READ_TIMEOUT) as server:  # fmt: skip
        yield server


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The failed-login limit, tight; no rate limit; a trusted proxy at PROXY. globex's
    identities fail in the per-dialect cases; initech's are never spent."""
    tenants = {name: tenant_config(name) for name in ("acme", "globex", "initech")}
    directory = tmp_path_factory.mktemp("guarded")
    with gateway(directory, "guarded", tenants, auth_failures=FAILURES,
                 trusted_proxies=[PROXY]) as server:  # fmt: skip
        yield server


@pytest.fixture
async def proxy() -> AsyncIterator[aiohttp.ClientSession]:
    """The trusted proxy in front of the guarded gateway, naming clients in X-Forwarded-For."""
    connector = aiohttp.TCPConnector(local_addr=(PROXY, 0))
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


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
        timed(f"rate limit ({dialect})", answer)
        assert await ledger(http, tight.url, invoice) == before
        # Another credential has a bucket of its own.
        path = list_path(dialect, other, "globex")
        other_answer = await send(http, tight.url, "GET", path,
                                  headers=credentials(dialect, "globex"))  # fmt: skip
        assert other_answer.status == 200, other_answer.body


# --- failed logins, per (client address, identity) -------------------------------------


def wrong(dialect: str) -> dict[str, str]:
    """globex's working credential in `dialect` with its secret spoiled: the identity it
    claims (the login, the app the token names) stays; a spoiled key is a key of its own."""
    right = credentials(dialect, "globex")
    scheme = dialects.unit(dialect).caller_auth
    if isinstance(scheme, BasicAuth):
        encoded = right["Authorization"].split(" ", 1)[1]
        login = base64.b64decode(encoded).decode().partition(":")[0]
        return {**right, **basic(login, "a-wrong-guess")}
    if isinstance(scheme, ApiKeyAuth):
        return {**right, scheme.header: right[scheme.header] + "-wrong"}
    head, payload, signature = right["Authorization"].split(" ", 1)[1].split(".")
    # another first character: still base64url, so the token is read and names its app
    spoiled = ("B" if signature[0] == "A" else "A") + signature[1:]
    return {**right, "Authorization": f"Bearer {head}.{payload}.{spoiled}"}


async def fail_until_refused(http: aiohttp.ClientSession, url: str, dialect: str,
                             headers: dict[str, str], invoice: int) -> None:  # fmt: skip
    """Spend the identity's failures; the next attempt is refused as rate-limited."""
    for _ in range(FAILED_BURST):
        answer = await send(http, url, "GET", list_path(dialect, invoice), headers=headers)
        assert_error(dialect, answer, "unauthenticated")
    answer = await send(http, url, "GET", list_path(dialect, invoice), headers=headers)
    assert_error(dialect, answer, "rate_limited", message="failed authentications")
    assert 1 <= int(answer.headers["Retry-After"]) <= FAILED_BURST
    timed(f"failed-login limit ({dialect})", answer)


async def assert_served(http: aiohttp.ClientSession, url: str, dialect: str, invoice: int,
                        extra: dict[str, str]) -> None:  # fmt: skip
    path, content_type, body = create_request(dialect, invoice)
    headers = {**credentials(dialect), "Content-Type": content_type, **extra}
    answer = await send(http, url, "POST", path, headers=headers, body=body)
    assert answer.status in (200, 201), answer.body
    answer = await send(http, url, "GET", list_path(dialect, invoice),
                        headers={**credentials(dialect), **extra})  # fmt: skip
    assert answer.status == 200, answer.body


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_right_credential_is_served_after_other_credentials_failures_from_its_address(
    guarded: Server, observer: aiohttp.ClientSession, dialect: str
) -> None:
    """Everyone behind one NAT shares an address: one client's failures are its own."""
    invoice = await new_invoice(observer, guarded.url)
    async with aiohttp.ClientSession() as shared:
        await fail_until_refused(shared, guarded.url, dialect, wrong(dialect), invoice)

        await assert_served(shared, guarded.url, dialect, invoice, {})
    # the failing identity from another address has failures of its own to spend
    answer = await send(observer, guarded.url, "GET", list_path(dialect, invoice),
                        headers=wrong(dialect))  # fmt: skip
    assert_error(dialect, answer, "unauthenticated")


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_behind_a_trusted_proxy_each_forwarded_address_counts_apart(
    guarded: Server, observer: aiohttp.ClientSession, proxy: aiohttp.ClientSession, dialect: str
) -> None:
    invoice = await new_invoice(observer, guarded.url)
    number = DIALECTS.index(dialect)
    behind = {"X-Forwarded-For": f"198.51.100.{number}"}  # the client the proxy names
    elsewhere = {"X-Forwarded-For": f"198.51.100.{100 + number}"}
    await fail_until_refused(proxy, guarded.url, dialect, {**wrong(dialect), **behind}, invoice)

    await assert_served(proxy, guarded.url, dialect, invoice, behind)
    answer = await send(proxy, guarded.url, "GET", list_path(dialect, invoice),
                        headers={**wrong(dialect), **elsewhere})  # fmt: skip
    assert_error(dialect, answer, "unauthenticated")
    # from an untrusted peer the header is ignored: the peer's own address counts
    answer = await send(observer, guarded.url, "GET", list_path(dialect, invoice),
                        headers={**wrong(dialect), **behind})  # fmt: skip
    assert_error(dialect, answer, "unauthenticated")


async def test_token_endpoint_and_admin_failures_lock_out_that_app_and_the_admin_token(
    guarded: Server, observer: aiohttp.ClientSession
) -> None:
    def login(app: str, secret: str) -> str:
        return json.dumps({"strategy": "app-secret", "appId": app, "appSecret": secret})

    json_type = {"Content-Type": "application/json"}
    admin_path = f"/gateway/v1/invoices/{await new_invoice(observer, guarded.url)}"
    async with aiohttp.ClientSession() as shared:
        for _ in range(FAILED_BURST):
            answer = await send(shared, guarded.url, "POST", "/authentication",
                                headers=json_type, body=login("acme-app", "guess"))  # fmt: skip
            assert_error("urlkey", answer, "unauthenticated")
        answer = await send(shared, guarded.url, "POST", "/authentication",
                            headers=json_type, body=login("acme-app", "acme-app-secret"))  # fmt: skip
        assert_error("urlkey", answer, "rate_limited", message="failed authentications")
        answer = await send(shared, guarded.url, "POST", "/authentication",
                            headers=json_type, body=login("initech-app", "initech-app-secret"))  # fmt: skip
        assert answer.status == 201, answer.body  # another app, same address

        guess = {"Authorization": "Bearer guess"}
        for _ in range(FAILED_BURST):
            answer = await send(shared, guarded.url, "GET", admin_path, headers=guess)
            assert_error("admin", answer, "unauthenticated")
        answer = await send(shared, guarded.url, "GET", admin_path, headers=guess)
        assert_error("admin", answer, "rate_limited")
        assert (await send(shared, guarded.url, "GET", "/healthz")).status == 200
    served = await send(observer, guarded.url, "GET", admin_path, headers=ADMIN)
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
    """Not before the read timeout (how long after it depends on the machine's load: the
    client's unsent parts show the cut came first)."""
    assert READ_TIMEOUT * 900 <= elapsed_ms, elapsed_ms


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
        assert served.status == 200
        timed("healthz beside 20 slow senders", served)
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
    timed(f"framing {name}", raw.as_answer())
    await asyncio.sleep(0.05)  # anything smuggled would have been served by now
    assert await ledger(http, catalogue.url, invoice) == before


async def test_the_servers_answer_after_the_abuse(
    catalogue: Catalogue, tight: Server, guarded: Server, tmp_path: Path
) -> None:
    for url in (catalogue.url, tight.url, guarded.url):
        async with aiohttp.ClientSession() as http:
            assert (await send(http, url, "GET", "/healthz")).status == 200
    assert "unexpected error" not in tight.output() + guarded.output()
