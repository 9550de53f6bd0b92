"""The security catalogue's harness: real gateway processes, raw HTTP, error shapes, figures.

Every attack is sent over the network to `python -m gateway` running on a free port,
and judged on what a client sees: the status, the error in the dialect's own shape,
the time to the answer, and the ledger (through the admin API) unchanged.
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import gc
import json
import re
import socket
import statistics
import struct
import termios
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

import dialects
from dialects import testing
from gateway.config import hashes

from ..http.server import Server
from ..registry import ALL
from ..support import tenant_config

ADMIN_TOKEN = "security-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
DIALECTS = ALL
# A refusal is answered within this, measured around the request after a warm-up.
BOUND_MS = 50.0
# Growth of the catalogue server's peak RSS over its RSS after start-up.
MAX_RSS_GROWTH_MB = 50.0
XML = "application/xml; charset=utf-8"
JSON = "application/json; charset=utf-8"
DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
NEVER = 987_654_321  # an id no test ever creates

# The status of each error kind (dialects/errors.py) and where a dialect differs
# (docs/dialects.md, "Statuses"); "admin" is the canonical admin API.
STATUS = {
    "bad_request": 400,
    "validation": 422,
    "ledger": 422,
    "unauthenticated": 401,
    "forbidden": 403,
    "not_found": 404,
    "request_timeout": 408,
    "too_large": 413,
    "media_type": 415,
    "rate_limited": 429,
    "upstream": 502,
}
# The statuses each dialect documents where it differs from the above, by dialect; a
# dialect not listed (one installed as a plug-in) is held to what its codec states.
DIALECT_STATUS: dict[str, dict[str, int]] = {
    "harvest": {"rate_limited": 503},
    "fastbill": {},
    "invoiless": {"validation": 400},
    "urlkey": {"validation": 400},
    "xero": {"validation": 400, "ledger": 400},
}


def status_of(kind: str, dialect: str) -> int:
    """The tables above; a dialect they do not list states its own in its codec."""
    if dialect == "admin":
        return STATUS[kind]
    documented = DIALECT_STATUS.get(dialect)
    if documented is None:
        documented = dict(dialects.get(dialect).statuses)
    return documented.get(kind, STATUS[kind])


FEATHERS = {
    400: "BadRequest",
    401: "NotAuthenticated",
    403: "Forbidden",
    404: "NotFound",
    408: "Timeout",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    422: "Unprocessable",
    429: "TooManyRequests",
    502: "BadGateway",
}


# --- figures -------------------------------------------------------------------------


@dataclass
class Figures:
    """What the catalogue measured, printed at the end of the run (tests/security/conftest)."""

    refusals: dict[str, float] = field(default_factory=dict)
    bounds: dict[str, float] = field(default_factory=dict)  # the bound each was held to
    fuzz_examples: int = 0
    fuzz_statuses: dict[int, int] = field(default_factory=dict)
    rss_baseline_kb: int = 0
    rss_peak_kb: int = 0
    rss_end_kb: int = 0
    proxy_rss_peak_kb: int = 0
    # The slowest second client after a request: (ms, baseline ms, after what).
    slowest_second: tuple[float, float, str] = (0.0, 0.0, "")

    def second_client(self, what: str, elapsed_ms: float, baseline_ms: float) -> None:
        self.slowest_second = max(self.slowest_second, (elapsed_ms, baseline_ms, what))

    def refusal(self, name: str, elapsed_ms: float, bound_ms: float = 0.0) -> None:
        self.refusals[name] = max(elapsed_ms, self.refusals.get(name, 0.0))
        self.bounds[name] = bound_ms or BOUND_MS

    def lines(self) -> list[str]:
        if not self.refusals and not self.fuzz_examples:
            return []
        lines = [f"attack cases refused: {len(self.refusals)}"]
        plain = {k: v for k, v in self.refusals.items() if self.bounds[k] <= BOUND_MS}
        for label, found in (("slowest refusal", self.refusals), ("slowest held to "
                             f"{BOUND_MS:g} ms (no scrypt, no pauses)", plain)):  # fmt: skip
            if found:
                name, slowest = max(found.items(), key=lambda item: item[1])
                lines.append(f"{label}: {slowest:.1f} ms ({name})")
        slow = [f"{k} {v:.1f} ms" for k, v in self.refusals.items() if v >= self.bounds[k]]
        if slow:
            lines.append(f"refusals slower than their bound: {', '.join(sorted(slow))}")
        lines.append(f"fuzz examples: {self.fuzz_examples} (statuses {self.fuzz_statuses})")
        if self.slowest_second[2]:
            after, before, what = self.slowest_second
            lines.append(f"slowest second client: {after:.1f} ms ({before:.1f} before; {what})")
        if self.rss_peak_kb:
            growth = (self.rss_peak_kb - self.rss_baseline_kb) / 1024
            lines.append(
                f"catalogue server RSS: {self.rss_baseline_kb / 1024:.1f} MB after start-up, "
                f"peak {self.rss_peak_kb / 1024:.1f} MB (+{growth:.1f} MB), "
                f"{self.rss_end_kb / 1024:.1f} MB at the end"
            )
        if self.proxy_rss_peak_kb:
            lines.append(f"proxy-mode server peak RSS: {self.proxy_rss_peak_kb / 1024:.1f} MB")
        return lines


FIGURES = Figures()


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in kB, from /proc."""
    found: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0])
    return found


# --- credentials -----------------------------------------------------------------------


def basic(user: str, secret: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def credentials(dialect: str, tenant: str = "acme") -> dict[str, str]:
    """Working credentials of `tenant` (tests.support.tenant_config: plain or hashed)."""
    return testing.support(dialect).credentials(tenant)


def hexid(number: int) -> str:
    return f"{number:024x}"


# --- server processes --------------------------------------------------------------------


def hashed_tenant(name: str) -> dict[str, Any]:
    """tenant_config(name) with every secret stored as a scrypt hash, as config.yaml has."""
    tenant = tenant_config(name)
    for dialect in dialects.units():
        tenant[dialect] = testing.support(dialect).hashed(tenant[dialect], hashes.make_hash)
    return tenant


def write_config(directory: Path, name: str, tenants: dict[str, Any], **server: Any) -> Path:
    raw: dict[str, Any] = {
        "admin_token": ADMIN_TOKEN,
        "token_secret": "security-token-secret",
        "server": {"access_log": False, **server},
        "tenants": tenants,
    }
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def start(directory: Path, name: str, config: Path, args: Sequence[str] = ()) -> Server:
    """A gateway process answering /healthz (bounded wait) when returned; `args`: more
    command-line options (`--log-format json`)."""
    database, log = directory / f"{name}.db", directory / f"{name}.log"
    return Server(config, database, log, args=args).wait_ready()


@contextmanager
def gateway(
    directory: Path,
    name: str,
    tenants: dict[str, Any],
    args: Sequence[str] = (),
    **server: Any,
) -> Iterator[Server]:
    process = start(directory, name, write_config(directory, name, tenants, **server), args)
    try:
        yield process
    finally:
        process.stop()


# --- requests through aiohttp ----------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    elapsed_ms: float

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")

    def json(self) -> Any:
        return json.loads(self.body)


async def send(
    session: aiohttp.ClientSession,
    url: str,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | str | None = None,
) -> Answer:
    """One request, fully read; elapsed is from sending to the last byte of the answer."""
    data = body.encode() if isinstance(body, str) else body
    port = int(url.rsplit(":", 1)[1])
    baseline = await quiet_baseline(port)
    with no_gc():
        started = time.perf_counter()
        async with session.request(
            method, url + path, headers=headers or {}, data=data, allow_redirects=False
        ) as response:
            read = await response.read()
            elapsed = (time.perf_counter() - started) * 1000
    await assert_others_served(port, f"{method} {path[:80]}", baseline)
    # multidict -> dict keeps the first of repeated headers; none are repeated here
    return Answer(response.status, dict(response.headers), read, elapsed)


async def quiet_baseline(port: int) -> float:
    """What a second client waits before a request: the median of three, in ms."""
    return statistics.median([await second_client(port) for _ in range(3)])


async def assert_others_served(port: int, what: str, baseline_ms: float) -> None:
    """Right after a request, a second client on a fresh connection is answered (200):
    no request, refused or not, may leave the server unable to serve others. How long
    that client waited, against the wait just before, is a figure printed at the end of
    the run (a refused gzip bomb once kept the server inflating the rest of its body for
    everyone for a second), not a bound: wall-clock bounds fail on a busy machine.
    """
    FIGURES.second_client(what, await second_client(port), baseline_ms)


async def second_client(port: int) -> float:
    """Milliseconds a GET /healthz on a new connection takes: what another client waits."""
    with no_gc():
        started = time.perf_counter()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(request_head("GET", "/healthz", [("Connection", "close")]))
            status, _, _, _ = await read_answer(reader, 30.0)
        finally:
            writer.close()
        elapsed = (time.perf_counter() - started) * 1000
    assert status == 200, f"/healthz answered {status}"
    return elapsed


@contextmanager
def no_gc() -> Iterator[None]:
    """No garbage collection in this (the test) process while a request is timed.

    Late in a run the test process holds hundreds of thousands of objects, and a full
    collection that happens to fall inside a request would be billed to the server.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


async def warm_up(session: aiohttp.ClientSession, url: str) -> None:
    """One request first, so the timed one finds a connection (and the server) ready."""
    async with session.get(f"{url}/healthz") as response:
        assert response.status == 200


async def admin(session: aiohttp.ClientSession, url: str, method: str, path: str,
                body: Any = None) -> Any:  # fmt: skip
    async with session.request(method, url + path, json=body, headers=ADMIN) as response:
        assert response.status < 300, (response.status, await response.text())
        return await response.json()


async def new_invoice(
    session: aiohttp.ClientSession,
    url: str,
    *,
    tenant: str = "acme",
    total: str = "1000.00",
    currency: str = "EUR",
    draft: bool = False,
) -> int:
    body = {
        "tenant": tenant,
        "number": f"SEC-{time.monotonic_ns()}",
        "currency": currency,
        "total": total,
        "issued_on": "2026-01-01",
        "due_on": "2999-12-31",
        "draft": draft,
    }
    created = await admin(session, url, "POST", "/gateway/v1/invoices", body)
    number: int = created["id"]
    return number


async def ledger(session: aiohttp.ClientSession, url: str, *invoices: int) -> list[Any]:
    """What must not change: each invoice's due amount, status and live payments."""
    found = []
    for number in invoices:
        data = await admin(session, url, "GET", f"/gateway/v1/invoices/{number}")
        found.append((data["due_amount"], data["status"], data["payments"]))
    return found


async def pay(session: aiohttp.ClientSession, url: str, invoice: int, amount: str,
              tenant: str = "acme") -> int:  # fmt: skip
    """A good Invoiless payment; its canonical id."""
    headers = {**credentials("invoiless", tenant), "Content-Type": "application/json"}
    body = f'{{"amount": {amount}, "method": "Cash", "paidAt": "2026-11-20"}}'
    answer = await send(session, url, "POST", f"/v1/invoices/{invoice}/payments",
                        headers=headers, body=body)  # fmt: skip
    assert answer.status == 201, answer.body
    number = int(answer.json()["id"])
    return number


# --- the dialects' error shapes -------------------------------------------------------


def assert_error(
    dialect: str,
    answer: Answer,
    kind: str,
    *,
    fmt: str | None = None,
    message: str | None = None,
) -> str:
    """`answer` is the `kind` error in `dialect`'s own shape; returns its message text.

    Shapes are each dialect's test support's (docs/dialects.md gives them); "admin" is
    the canonical admin API's `{"error": {"code", "message"[, "fields"]}}`. `message`
    must occur in the text if given.
    """
    status = status_of(kind, dialect)
    assert answer.status == status, (answer.status, answer.body[:500])
    assert b"Traceback" not in answer.body
    seen = testing.Answer(answer.status, answer.headers, answer.body)
    if dialect == "admin":
        text = testing.error_object(seen, status)
        assert answer.json()["error"]["code"] == kind, answer.body
    else:
        text = testing.support(dialect).error(seen, status, kind, fmt)
    if kind == "rate_limited":
        assert answer.headers["Retry-After"].isdigit()
    if message is not None:
        assert message in text, (message, text)
    return text


def timed(name: str, answer: Answer, bound_ms: float = BOUND_MS) -> None:
    """The refusal's time goes into the figures, beside the bound it should keep.

    Not asserted: on a shared, loaded machine any wall-clock bound fails now and then.
    The figures printed at the end of the run name each refusal slower than its bound.
    """
    FIGURES.refusal(name, answer.elapsed_ms, bound_ms)


# --- raw HTTP over a socket ------------------------------------------------------------


@dataclass(frozen=True)
class RawAnswer:
    """An answer read off a socket; status 0 if the server closed without one."""

    status: int
    headers: dict[str, str]
    body: bytes
    elapsed_ms: float
    closed: bool  # the server closed the connection after (or instead of) the answer
    parts_sent: int = 0  # how many of the parts went out before the answer or hang-up

    def as_answer(self) -> Answer:
        return Answer(self.status, self.headers, self.body, self.elapsed_ms)


def request_head(method: str, path: str, headers: Sequence[tuple[str, str]]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def read_answer(reader: asyncio.StreamReader, timeout: float) -> tuple[int, dict[str, str], bytes, bool]:  # fmt: skip
    """One HTTP/1.1 answer (Content-Length, chunked or to EOF) and whether EOF followed."""
    async with asyncio.timeout(timeout):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return 0, {}, b"", True
        except ConnectionResetError:
            return 0, {}, b"", True
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers.setdefault(name.strip().title(), value.strip())
        headers = {("WWW-Authenticate" if k == "Www-Authenticate" else k): v
                   for k, v in headers.items()}  # fmt: skip
        if "Content-Length" in headers:
            body = await reader.readexactly(int(headers["Content-Length"]))
        elif headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                body += await reader.readexactly(size + 2)
                body = body[:-2]
                if size == 0:
                    break
        else:
            body = await reader.read()
        closed = headers.get("Connection", "").lower() == "close" or lines[0].endswith("1.0")
        return status, headers, body, closed


async def exchange(
    port: int,
    parts: Sequence[bytes],
    *,
    pause: float = 0.0,
    timeout: float = 5.0,
    wait_close: bool = False,
) -> RawAnswer:
    """Send `parts` (`pause` seconds apart) on a new connection and read one answer.

    Sending stops as soon as the server answers or hangs up. Elapsed runs from the
    first byte sent to the answer read. `wait_close` then waits (within `timeout`) for
    the server to close the connection.
    """
    baseline = await quiet_baseline(port)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answer = asyncio.create_task(read_answer(reader, timeout))
    sent = 0
    try:
        with no_gc():
            started = time.perf_counter()
            for index, part in enumerate(parts):
                if index and pause:
                    await asyncio.wait({answer}, timeout=pause)
                if answer.done():
                    break
                try:
                    writer.write(part)
                    await writer.drain()
                except (ConnectionError, OSError):
                    break
                sent += 1
            status, headers, body, closed = await answer
            elapsed = (time.perf_counter() - started) * 1000
        await assert_others_served(port, f"raw {parts[0][:60]!r}" if parts else "raw", baseline)
        if wait_close and not closed:
            try:
                async with asyncio.timeout(timeout):
                    closed = await reader.read(1) == b""
            except (TimeoutError, ConnectionError):
                closed = False
        return RawAnswer(status, headers, body, elapsed, closed, sent)
    finally:
        answer.cancel()
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass


def server_end(server_port: int, client_port: int) -> int | None:
    """The server's end of a loopback connection in /proc/net/tcp: the bytes in its
    kernel send queue, or None once the connection is gone from the server's side."""
    local, remote = f":{server_port:04X}", f":{client_port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(local) and fields[2].endswith(remote):
            return int(fields[4].split(":")[0], 16)
    return None


def unread(sock: socket.socket) -> int:
    """Bytes that reached `sock` and wait there unread."""
    found = fcntl.ioctl(sock.fileno(), termios.FIONREAD, struct.pack("i", 0))
    value: int = struct.unpack("i", found)[0]
    return value


def blocking_exchange(port: int, data: bytes, timeout: float = 5.0) -> tuple[int, bytes]:
    """A synchronous one-shot exchange (the fuzz test): status and body, 0 if none."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except OSError:
            pass  # answered and closed before the body was all sent: read the answer
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            received += chunk
            head, sep, body = received.partition(b"\r\n\r\n")
            if sep:
                match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                if match and len(body) >= int(match.group(1)):
                    break
    head, _, body = received.partition(b"\r\n\r\n")
    match = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    return (int(match.group(1)) if match else 0), body
