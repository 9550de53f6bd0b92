"""Clients that hang up mid-request, or never read their answers: no server error, no hold.

A real gateway process (JSON log lines, access log on, a short
`server.write_timeout_seconds`) is driven over raw sockets.

A client that closes its socket in the middle of its body (Content-Length or chunked),
on every dialect's write route and every route that needs no credentials (translate,
the token endpoints), is logged and counted with status 499, with no 5xx, no `failed` line, no traceback,
and nothing is recorded.

A slow reader sends pipelined requests for a 58 KB API document and never reads; the
server's buffers fill, writing pauses, and once it has stayed paused for the write
timeout the connection is aborted: gone from the server's side of the kernel (its
queued answers freed), logged, and counted. No wall-clock figure is asserted: the
test waits, bounded, for what must happen. A normal client, served meanwhile and
afterwards, pipelining too but reading, gets every answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import dialects
from dialects import testing

from ..http.server import START_TIMEOUT, Server, send
from ..security.harness import (
    ADMIN,
    DIALECTS,
    credentials,
    gateway,
    ledger,
    new_invoice,
    request_head,
    server_end,
)
from ..support import tenant_config

FRAMINGS = ("content-length", "chunked")
TRANSLATE = "/gateway/v1/translate"
WRITE_TIMEOUT = 0.3
DOCUMENT = "/gateway/v1/openapi/admin.json"
REQUEST = f"GET {DOCUMENT} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("client-gone")
    tenants = {"acme": tenant_config("acme")}
    json_lines = ["--log-format", "json"]
    with gateway(
        directory, "gone", tenants, json_lines, access_log=True, write_timeout_seconds=WRITE_TIMEOUT
    ) as process:
        yield process


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


# The routes that need no credentials: a stranger's hang-up is no server error either.
OPEN_ROUTES = {
    TRANSLATE: "application/json",
    **{
        unit.token_endpoint.path: "application/json"
        if unit.token_endpoint.body_format == "json"
        else "application/x-www-form-urlencoded"
        for unit in dialects.units().values()
        if unit.token_endpoint is not None
    },
}


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize("path", sorted(OPEN_ROUTES))
async def test_a_client_gone_mid_body_on_a_route_without_credentials_is_499(
    server: Server, path: str, framing: str
) -> None:
    request_id = f"gone-{path.strip('/').replace('/', '-')}-{framing}"
    body = json.dumps({"from": "harvest", "to": "urlkey", "payment": "x" * 200}).encode()
    headers = {"Content-Type": OPEN_ROUTES[path], "X-Request-Id": request_id}

    await assert_gone_quietly(server, cut_short(("POST", path), headers, body, framing), request_id)


# --- slow readers ------------------------------------------------------------------------


def closed_for_write_timeout(port: int) -> float:
    """gateway_connections_closed_total{reason="write_timeout"}, 0 if never counted."""
    text = send(port, "GET", "/metrics", headers=ADMIN).body.decode()
    found = re.search(r'^gateway_connections_closed_total\{reason="write_timeout"\} (\S+)$',
                      text, re.MULTILINE)  # fmt: skip
    return float(found.group(1)) if found else 0.0


def read_answers(sock: socket.socket, count: int) -> list[int]:
    """`count` answers off `sock` (Content-Length framed): their statuses."""
    statuses: list[int] = []
    buffer = b""
    while len(statuses) < count:
        head_end = buffer.find(b"\r\n\r\n")
        if head_end >= 0:
            head = buffer[:head_end].decode("latin-1")
            length = int(re.search(r"(?im)^content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
            if len(buffer) >= head_end + 4 + length:
                statuses.append(int(head.split()[1]))
                buffer = buffer[head_end + 4 + length :]
                continue
        chunk = sock.recv(65536)
        assert chunk, f"closed after {len(statuses)} of {count} answers"
        buffer += chunk
    return statuses


def cut_off_slow_reader(server: Server) -> None:
    """A slow reader on `server`, until its connection is gone from the server's side."""
    before = closed_for_write_timeout(server.port)
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.setblocking(False)
    client_port = sock.getsockname()[1]
    served_meanwhile: list[int] = []
    queued_peak = 0
    deadline = time.monotonic() + START_TIMEOUT  # a bound on the wait, not a figure
    try:
        while (queued := server_end(server.port, client_port)) is not None:
            assert time.monotonic() < deadline, "the server kept the slow reader's connection"
            queued_peak = max(queued_peak, queued)
            if queued and not served_meanwhile:  # its answers wait: another client is served
                served_meanwhile.append(send(server.port, "GET", "/healthz").status)
            try:
                sock.send(REQUEST * 16)
            except BlockingIOError:  # the server reads no more of its requests
                time.sleep(0.01)
            except OSError:
                pass  # reset: the loop's test sees the server's end gone
        sock.settimeout(START_TIMEOUT)
        with contextlib.suppress(ConnectionResetError):
            while sock.recv(65536):  # whatever reached it unread, then the end
                pass
    finally:
        sock.close()

    assert queued_peak > 0, "answers were queued for it before it was cut off"
    assert served_meanwhile == [200]
    closed = [json.loads(line) for line in server.output().splitlines()
              if '"event":"slow_reader_closed"' in line]  # fmt: skip
    assert len(closed) == 1, closed
    assert closed[0]["address"] == "127.0.0.1"
    assert closed[0]["seconds"] == WRITE_TIMEOUT
    # (--workers: whichever worker answers the scrape adds up all of them)
    assert closed_for_write_timeout(server.port) == before + 1


def test_a_client_that_reads_no_answer_is_cut_off_and_its_buffers_freed(server: Server) -> None:
    cut_off_slow_reader(server)


def test_a_slow_reader_is_cut_off_by_a_worker_too(tmp_path: Path) -> None:
    """--workers: each worker serves its connections through the same watch."""
    tenants = {"acme": tenant_config("acme")}
    args = ["--log-format", "json", "--workers", "2"]
    with gateway(tmp_path, "workers", tenants, args, write_timeout_seconds=WRITE_TIMEOUT) as server:
        cut_off_slow_reader(server)


def test_a_client_that_pipelines_and_reads_gets_every_answer(server: Server) -> None:
    before = closed_for_write_timeout(server.port)
    count = 100  # 5.8 MB of answers: more than the buffers hold, so writing pauses too
    with socket.create_connection(("127.0.0.1", server.port), timeout=START_TIMEOUT) as sock:
        sock.sendall(REQUEST * count)
        assert read_answers(sock, count) == [200] * count
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_answers(sock, 1) == [200], "the connection is still served"
    assert closed_for_write_timeout(server.port) == before
