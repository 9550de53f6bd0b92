"""Hostile backends (proxy mode): the same limits apply to what a backend answers.

A gateway process proxies tenant acme to a Harvest-dialect backend (XML) and globex
to an Invoiless-dialect backend (JSON), both a scripted fake on a thread of its own.
Its config sets the XML and JSON depth limits to 8 and the backend's max_body_bytes to
64 KiB, so the refusals below also show that the configured limits, not the defaults,
are the ones applied. Each hostile answer to a list is a 502 in the caller's dialect,
fast, with no write sent to the backend, and the gateway keeps serving.
"""

from __future__ import annotations

import asyncio
import gzip
import threading
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from dialects import testing

from ..http.server import Server, free_port
from ..registry import ALL
from ..support import tenant_config
from .harness import (
    FIGURES,
    assert_error,
    credentials,
    gateway,
    memory_kb,
    send,
    timed,
    warm_up,
)

Answer = Callable[[web.Request], Awaitable[web.StreamResponse]]
BACKEND_LIMIT = 64 * 1024
DEPTH = 8


@dataclass
class FakeBackend:
    """An aiohttp server on its own thread and loop; `answer` may be swapped any time."""

    port: int = field(default_factory=free_port)
    answer: Answer | None = None
    seen: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(f"{request.method} {request.path}")
        await request.read()
        return await (self.answer or good)(request)

    @contextmanager
    def running(self) -> Iterator[FakeBackend]:
        loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()


async def good(request: web.Request) -> web.StreamResponse:
    """An empty list, in the backend dialect the path belongs to."""
    if request.path.startswith("/invoices/"):
        body = b'<?xml version="1.0" encoding="UTF-8"?>\n<payments type="array"></payments>\n'
        return web.Response(body=body, content_type="application/xml")
    return web.Response(body=b"[]", content_type="application/json")


def raw(body: bytes, content_type: str, **headers: str) -> Answer:
    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, headers={"Content-Type": content_type, **headers})

    return answer


def streamed(size: int, content_type: str, *, declared: bool) -> Answer:
    """`size` bytes of spaces, with a Content-Length or chunked."""

    async def answer(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": content_type})
        if declared:
            response.content_length = size
        await response.prepare(request)
        chunk = b" " * 65536
        try:
            for _ in range(size // len(chunk)):
                await response.write(chunk)
            await response.write_eof()
        except (ConnectionError, OSError):
            pass  # the gateway hung up at its limit, as it should
        return response

    return answer


ZEROS = b"\0" * (64 * 1024 * 1024)
XML_TYPE, JSON_TYPE = "application/xml", "application/json"
LIST = '<?xml version="1.0" encoding="UTF-8"?>\n{prolog}<payments type="array"{attrs}>{inner}</payments>'
LAUGHS = (
    '<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">' for i in range(1, 10))
    + "]>"
)  # fmt: skip


def xml_list(prolog: str = "", attrs: str = "", inner: str = "") -> bytes:
    return LIST.format(prolog=prolog, attrs=attrs, inner=inner).encode()


PAYMENT = "<payment><id>1</id><amount>1.0</amount><notes>{}</notes></payment>"


@dataclass(frozen=True)
class Hostile:
    name: str
    answer: Answer
    message: str


XML_ANSWERS = [
    Hostile("billion-laughs", raw(xml_list(LAUGHS, inner=PAYMENT.format("&lol9;")), XML_TYPE),
            "DOCTYPE"),
    Hostile("external-entity",
            raw(xml_list('<!DOCTYPE p [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
                         inner=PAYMENT.format("&x;")), XML_TYPE), "DOCTYPE"),
    Hostile("external-dtd", raw(xml_list('<!DOCTYPE p SYSTEM "http://127.0.0.1:9/p.dtd">'),
                                XML_TYPE), "DOCTYPE"),
    Hostile("xinclude",
            raw(xml_list(attrs=' xmlns:xi="http://www.w3.org/2001/XInclude"',
                         inner='<xi:include href="file:///etc/passwd"/>'), XML_TYPE),
            "XInclude"),
    Hostile("depth-9-of-8", raw(xml_list(inner="<a>" * 8 + "</a>" * 8), XML_TYPE),
            f"deeper than {DEPTH} levels"),
    Hostile("elements-10001", raw(xml_list(inner="<x/>" * 10_001), XML_TYPE),
            "more than 10000 elements"),
    Hostile("attributes-17", raw(xml_list(attrs="".join(f' a{i}=""' for i in range(17))),
                                 XML_TYPE), "more than 16 attributes"),
    Hostile("utf16", raw(xml_list().decode().replace("UTF-8", "UTF-16").encode("utf-16"),
                         XML_TYPE), "UTF-8"),
    Hostile("huge-declared", streamed(10 * 1024 * 1024, XML_TYPE, declared=True), "too large"),
    Hostile("huge-chunked", streamed(10 * 1024 * 1024, XML_TYPE, declared=False), "too large"),
    Hostile("gzip-bomb", raw(gzip.compress(ZEROS, 9, mtime=0), XML_TYPE, **{"Content-Encoding": "gzip"}),
            "too large"),
    Hostile("deflate-bomb", raw(zlib.compress(ZEROS, 9), XML_TYPE, **{"Content-Encoding": "deflate"}),
            "too large"),
    Hostile("corrupt-gzip", raw(b"\x1f\x8b\x08\x00garbage", XML_TYPE, **{"Content-Encoding": "gzip"}),
            "unreadable"),
]  # fmt: skip
DIGITS = "9" * 60_000
JSON_ANSWERS = [
    Hostile("depth-9-of-8", raw(b"[" + b"[" * 8 + b"]" * 8 + b"]", JSON_TYPE), "nested too deeply"),
    Hostile("depth-60k", raw(b"[" * 60_000, JSON_TYPE), "nested too deeply"),
    Hostile("huge-number", raw(f'[{{"id": "p", "amount": {DIGITS}, "method": "Cash"}}]'.encode(),
                               JSON_TYPE), "unreadable"),
    Hostile("duplicate-keys", raw(b'[{"id": "p", "amount": 1, "amount": 1000, "method": "Cash"}]',
                                  JSON_TYPE), "Duplicate key"),
    Hostile("not-utf8", raw(b'[{"id": "p", "notes": "\xff"}]', JSON_TYPE), "UTF-8"),
    Hostile("nan", raw(b'[{"id": "p", "amount": NaN}]', JSON_TYPE), "NaN"),
    Hostile("huge-chunked", streamed(10 * 1024 * 1024, JSON_TYPE, declared=False), "too large"),
    Hostile("gzip-bomb", raw(gzip.compress(ZEROS, 9, mtime=0), JSON_TYPE, **{"Content-Encoding": "gzip"}),
            "too large"),
]  # fmt: skip


@dataclass(frozen=True)
class Proxy:
    server: Server
    backend: FakeBackend


def backend_section(dialect: str, url: str) -> dict[str, Any]:
    credentials = (
        {"user": "gw@example.com", "password": "gw-secret", "format": "xml"}
        if dialect == "harvest"
        else {"api_key": "gw-key"}
    )
    return {"dialect": dialect, "url": url, **credentials, "retries": 0, "timeout": 5,
            "breaker": {"failures": 10_000}, "max_body_bytes": BACKEND_LIMIT}  # fmt: skip


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    fake = FakeBackend()
    with fake.running():
        tenants = {
            "acme": {**tenant_config("acme"), "backend": backend_section("harvest", fake.url)},
            "globex": {**tenant_config("globex"),
                       "backend": backend_section("invoiless", fake.url)},
        }  # fmt: skip
        directory = tmp_path_factory.mktemp("proxy")
        with gateway(directory, "proxy", tenants, auth_failures=None, auth_address_failures=None, auth_global_failures=None, xml_max_depth=DEPTH,
                     json_max_depth=DEPTH) as server:  # fmt: skip
            yield Proxy(server, fake)


@pytest.fixture
async def http(proxy: Proxy) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        await warm_up(session, proxy.server.url)
        yield session


async def caller_invoice(http: aiohttp.ClientSession, proxy: Proxy, tenant: str) -> int:
    """The caller-side id of backend invoice 7 (harvest) or "inv-7" (invoiless)."""
    proxy.backend.answer = good
    dialect, backend_id = ("harvest", "7") if tenant == "acme" else ("invoiless", "inv-7")
    url = f"{proxy.server.url}/gateway/v1/ids/{dialect}/invoice/{backend_id}?tenant={tenant}"
    async with http.get(url, headers={"Authorization": "Bearer security-admin-token"}) as r:
        assert r.status == 200, await r.text()
        number: int = (await r.json())["dialect_ids"]["harvest"]
    return number


def listing(dialect: str, invoice: int, tenant: str) -> tuple[str, dict[str, str]]:
    """(path, headers) of `tenant`'s list of `invoice` in `dialect`, with its credentials."""
    request = testing.support(dialect).listing(tenant, invoice)
    return request.path, {**request.headers, **credentials(dialect, tenant)}


CALLERS = ALL
CASES = [
    pytest.param("acme", hostile, caller, id=f"xml-{hostile.name}-to-{caller}")
    for hostile in XML_ANSWERS
    for caller in CALLERS
] + [
    pytest.param("globex", hostile, caller, id=f"json-{hostile.name}-to-{caller}")
    for hostile in JSON_ANSWERS
    for caller in CALLERS
]


@pytest.mark.parametrize(("tenant", "hostile", "caller"), CASES)
async def test_a_hostile_backend_answer_is_a_502_in_the_callers_dialect(
    proxy: Proxy, http: aiohttp.ClientSession, tenant: str, hostile: Hostile, caller: str
) -> None:
    invoice = await caller_invoice(http, proxy, tenant)
    proxy.backend.answer = hostile.answer
    proxy.backend.seen.clear()

    path, headers = listing(caller, invoice, tenant)
    answer = await send(http, proxy.server.url, "GET", path, headers=headers)

    asked = "json" if headers.get("Accept") == "application/json" else None  # as listed
    assert_error(caller, answer, "upstream", fmt=asked, message=hostile.message)
    kind = "xml" if tenant == "acme" else "json"
    timed(f"backend {kind} {hostile.name} (to {caller})", answer)
    assert [s.split()[0] for s in proxy.backend.seen] == ["GET"], "one read, no write"
    proxy.backend.answer = good
    again = await send(http, proxy.server.url, "GET", path, headers=headers)
    assert again.status == 200, again.body


def test_the_proxy_stays_small_and_quiet(proxy: Proxy) -> None:
    """After the bombs: the gateway's peak RSS is bounded and nothing was a 500."""
    memory = memory_kb(proxy.server.process.pid)
    FIGURES.proxy_rss_peak_kb = memory["VmHWM"]
    assert memory["VmHWM"] < 250 * 1024, memory
    assert "unexpected error" not in proxy.server.output()
