"""A client that hangs up in the middle of its request body is no server error.

A real gateway process (JSON log lines, access log on) gets, over a raw socket, every
dialect's write route and the credential-free `POST /gateway/v1/translate` with a body
cut short (Content-Length or chunked), then the socket is closed. The request is
logged and counted with status 499, with no 5xx, no `failed` line, no traceback, and
nothing is recorded.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from dialects import testing

from ..security.harness import (
    ADMIN,
    DIALECTS,
    credentials,
    ledger,
    new_invoice,
    request_head,
    write_config,
)
from ..support import tenant_config
from .server import Server

FRAMINGS = ("content-length", "chunked")
TRANSLATE = "/gateway/v1/translate"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("client-gone")
    config = write_config(directory, "gone", {"acme": tenant_config("acme")}, access_log=True)
    process = Server(
        config, directory / "gone.db", directory / "gone.log", args=["--log-format", "json"]
    ).wait_ready()
    try:
        yield process
    finally:
        process.stop()


def cut_short(
    method_path: tuple[str, str], headers: dict[str, str], body: bytes, framing: str
) -> bytes:
    """The request's head and the first half of its body, never the rest."""
    half = body[: max(1, len(body) // 2)]
    if framing == "content-length":
        head = request_head(*method_path, [*headers.items(), ("Content-Length", str(len(body)))])
        return head + half
    head = request_head(*method_path, [*headers.items(), ("Transfer-Encoding", "chunked")])
    return head + b"%x\r\n%s\r\n" % (len(half), half)


async def hang_up_after(data: bytes, port: int) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    await asyncio.sleep(0.05)  # lets the server start reading the body (not a bound)
    writer.close()
    await writer.wait_closed()


def lines_of(server: Server, request_id: str) -> list[dict[str, Any]]:
    """The JSON log lines of one request, waited for (bounded) until its access line."""
    server.wait_for(f'"request_id":"{request_id}","method"')
    found = []
    for line in server.output().splitlines():
        if line.startswith("{"):
            parsed = json.loads(line)
            if parsed.get("request_id") == request_id:
                found.append(parsed)
    return found


async def requests_counted(http: aiohttp.ClientSession, url: str) -> dict[str, float]:
    """gateway_requests_total by status, over all dialects and operations."""
    async with http.get(f"{url}/metrics", headers=ADMIN) as response:
        assert response.status == 200
        text = await response.text()
    counted: dict[str, float] = {}
    for status, value in re.findall(r'^gateway_requests_total\{.*status="(\d+)"\} (\S+)$',
                                    text, re.MULTILINE):  # fmt: skip
        counted[status] = counted.get(status, 0.0) + float(value)
    return counted


async def assert_gone_quietly(server: Server, data: bytes, request_id: str) -> None:
    async with aiohttp.ClientSession() as http:
        before = await requests_counted(http, server.url)
        await hang_up_after(data, server.port)
        lines = lines_of(server, request_id)
        after = await requests_counted(http, server.url)

    access = [line for line in lines if line["event"] == "request"]
    assert [line["status"] for line in access] == [499], lines
    assert all(line["level"] == "info" for line in lines), lines
    assert not [line for line in lines if line["event"] == "failed" or "exception" in line]
    assert "Traceback" not in server.output()
    assert after.get("499", 0) == before.get("499", 0) + 1
    assert not [status for status in after if status.startswith("5")], after


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_client_gone_mid_body_on_a_write_route_is_499(
    server: Server, dialect: str, framing: str
) -> None:
    async with aiohttp.ClientSession() as http:
        invoice = await new_invoice(http, server.url)
        before = await ledger(http, server.url, invoice)
    request = testing.support(dialect).create("acme", invoice, "10.00")
    request_id = f"gone-{dialect}-{framing}"
    headers = {**request.headers, **credentials(dialect), "X-Request-Id": request_id}
    data = cut_short(("POST", request.path), headers, request.body or b"", framing)

    await assert_gone_quietly(server, data, request_id)

    async with aiohttp.ClientSession() as http:
        assert await ledger(http, server.url, invoice) == before


@pytest.mark.parametrize("framing", FRAMINGS)
async def test_a_client_gone_mid_body_on_translate_is_499(server: Server, framing: str) -> None:
    """The route that needs no credentials: a stranger's hang-up is no server error either."""
    request_id = f"gone-translate-{framing}"
    body = json.dumps({"from": "harvest", "to": "urlkey", "payment": "x" * 200}).encode()
    headers = {"Content-Type": "application/json", "X-Request-Id": request_id}

    await assert_gone_quietly(
        server, cut_short(("POST", TRANSLATE), headers, body, framing), request_id
    )
