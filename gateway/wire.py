"""A lean HTTP/1.1 client for one backend: pooled keep-alive connections, one write a request.

The proxy's hop spends its time in per-request Python, so this client does only what a
backend call needs: the request in one write on a TCP_NODELAY socket, an incremental
parser for the answer (status line, headers, Content-Length, chunked or close-delimited
bodies), gzip and deflate decoding bounded like the raw body, a total deadline per call
and a connect deadline per connection. What goes wrong is told by the exception's kind,
so the caller knows whether the request can have reached the backend.
"""

from __future__ import annotations

import asyncio
import base64
import re
import socket
import ssl
import zlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, cast
from urllib.parse import unquote, urlencode, urlsplit

from multidict import CIMultiDict, CIMultiDictProxy

from dialects import _values

MAX_HEAD = 64 * 1024  # the status line and headers of one answer together
MAX_CHUNK_LINE = 1024  # a chunk-size line, extensions included
IDLE_SECONDS = 5.0  # a pooled connection idle longer is dropped: backends close idle ones
_QUERY_SAFE = "?/:@!$'()*,"  # what stays unescaped in a query value, as aiohttp's yarl does
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_WITH_LENGTH = frozenset({"POST", "PUT", "PATCH"})  # sent with a length even when empty
_BREAK = re.compile("[\r\n\0]")
_ASCII_SPACE = " \t\n\r\x0b\x0c"  # what `bytes.strip` strips: no latin-1 spaces
_NO_BODY = frozenset({204, 304})
_DECODED = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
Framing = Literal["none", "length", "chunked", "close"]


class WireError(Exception):
    """A call that failed; subclasses say how far it got."""


class ConnectFailed(WireError):
    """No connection to the backend: nothing was sent."""

    def __init__(self, message: str, *, timed_out: bool) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class Broken(WireError):
    """The connection failed, or the answer broke HTTP, after the request went out."""


class TimedOut(WireError, TimeoutError):
    """No whole answer before the call's deadline."""


class TooLarge(WireError):
    """The answer's body, raw or decoded, is larger than allowed."""


class Corrupt(WireError):
    """The answer's compressed body cannot be decoded."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes


@dataclass(frozen=True)
class Origin:
    """Where the backend is: parsed once from its base URL."""

    base: str
    host: str
    port: int
    tls: bool
    prefix: str  # the base URL's path, requests' paths go under it
    host_header: str
    authorization: str | None  # Basic credentials from the URL's user part, if any

    @classmethod
    def parse(cls, base: str) -> Origin:
        parts = urlsplit(base)
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
        host = parts.hostname or ""
        shown = f"[{host}]" if ":" in host else host
        default = port == (443 if tls else 80)
        authorization = None
        if parts.username is not None:
            user = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            authorization = "Basic " + base64.b64encode(user.encode()).decode()
        return cls(
            base, host, port, tls, parts.path.rstrip("/"),
            shown if default else f"{shown}:{port}", authorization,
        )  # fmt: skip


class _Connection(asyncio.Protocol):
    """One kept-alive connection: sends a request, parses its answer as bytes arrive."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._buffer = bytearray()
        self._waiter: asyncio.Future[Response] | None = None
        self._head_request = False
        self._reset()

    def _reset(self) -> None:
        self.received = False  # any byte of the current answer
        self._status = 0
        self._headers: CIMultiDict[str] = CIMultiDict()
        self._framing: Framing = "none"
        self._keep = False
        self._left = 0  # body bytes (length) or chunk bytes (chunked) still to come
        self._chunks: list[bytes] = []
        self._size = 0
        self._trailers = False

    # --- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._status and self._framing == "close":
            self._keep = False
            self._finish(bytes(self._buffer))
        else:
            waiter.set_exception(Broken("The backend closed the connection mid-answer"))

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self.close()  # bytes nobody asked for: the connection cannot be trusted
            return
        self.received = True
        self._buffer += data
        try:
            self._parse()
        except WireError as exc:
            self.close()
            if not self._waiter.done():
                self._waiter.set_exception(exc)

    def eof_received(self) -> bool:
        return False  # the transport closes; connection_lost ends a close-delimited body

    # --- one exchange ----------------------------------------------------------------

    def send(self, request: bytes, waiter: asyncio.Future[Response], *, head: bool) -> None:
        assert self.transport is not None
        self._reset()
        self._waiter, self._head_request = waiter, head
        self.transport.write(request)

    def expire(self) -> None:
        """The call's deadline passed: the answer, if any, is abandoned with the connection."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(TimedOut("The backend did not answer in time"))
        self.close()

    @property
    def reusable(self) -> bool:
        return self._keep and not self.closed and not self._buffer

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # --- parsing -----------------------------------------------------------------------

    def _parse(self) -> None:
        while not self._status:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0 or end > MAX_HEAD:
                if len(self._buffer) > MAX_HEAD:
                    raise Broken("The backend's answer has too large a head")
                return
            head = bytes(self._buffer[:end])
            del self._buffer[: end + 4]
            self._head(head)
        if self._framing == "length":
            if len(self._buffer) >= self._left:
                body = bytes(self._buffer[: self._left])
                del self._buffer[: self._left]
                self._finish(body)
        elif self._framing == "chunked":
            self._chunked()
        elif self._framing == "close":
            if len(self._buffer) > self.limit:
                raise TooLarge("The backend's answer is too large")
        else:
            self._finish(b"")

    def _head(self, head: bytes) -> None:
        status_line, _, fields = head.partition(b"\r\n")
        version, _, rest = status_line.partition(b" ")
        code = _values.ascii_number(rest[:3].decode("latin-1"), digits=3)
        if (
            version not in (b"HTTP/1.1", b"HTTP/1.0")
            or code is None
            or rest[3:4] not in (b"", b" ")
        ):
            raise Broken("The backend's status line is not HTTP/1.x")
        status = code
        if 100 <= status < 200:
            return  # an interim answer; the real one follows
        headers = CIMultiDict(_fields(fields))
        self._status, self._headers = status, headers
        self._framing = self._framing_of(status, headers)
        persistent = version == b"HTTP/1.1" and "close" not in _tokens(headers, "Connection")
        self._keep = persistent and self._framing != "close"

    def _framing_of(self, status: int, headers: CIMultiDict[str]) -> Framing:
        if self._head_request or status in _NO_BODY:
            return "none"
        if "Transfer-Encoding" in headers:
            if _tokens(headers, "Transfer-Encoding")[-1:] != ["chunked"]:
                raise Broken("The backend sent a transfer coding other than chunked")
            if "Content-Length" in headers:
                raise Broken("The backend sent both a length and chunks")
            return "chunked"
        lengths = set(headers.getall("Content-Length", []))
        if not lengths:
            return "close"
        length = _values.ascii_number(lengths.pop())
        if lengths or length is None:
            raise Broken("The backend sent an unreadable Content-Length")
        self._left = length
        if self._left > self.limit:
            raise TooLarge("The backend's answer is too large")
        return "length"

    def _chunked(self) -> None:
        buffer = self._buffer
        while True:
            if self._trailers:
                end = buffer.find(b"\r\n")
                if end < 0:
                    if len(buffer) > MAX_HEAD:
                        raise Broken("The backend's chunk trailers are too large")
                    return
                del buffer[: end + 2]
                if end == 0:
                    self._finish(b"".join(self._chunks))
                    return
                continue
            if self._left == 0:
                end = buffer.find(b"\r\n")
                if end < 0:
                    if len(buffer) > MAX_CHUNK_LINE:
                        raise Broken("The backend's chunk size line is too long")
                    return
                line = bytes(buffer[:end]).split(b";", 1)[0].strip().decode("latin-1")
                size = _values.ascii_number(line, digits=15, base=16)
                if size is None:
                    raise Broken("The backend sent an unreadable chunk size")
                del buffer[: end + 2]
                if size == 0:
                    self._trailers = True
                    continue
                self._left = size + 2  # the chunk and its CRLF
                self._size += self._left - 2
                if self._size > self.limit:
                    raise TooLarge("The backend's answer is too large")
            if len(buffer) < self._left:
                return
            if buffer[self._left - 2 : self._left] != b"\r\n":
                raise Broken("The backend sent a chunk of the wrong size")
            self._chunks.append(bytes(buffer[: self._left - 2]))
            del buffer[: self._left]
            self._left = 0

    def _finish(self, body: bytes) -> None:
        waiter = self._waiter
        assert waiter is not None
        self._waiter = None
        headers = CIMultiDictProxy(self._headers)
        try:
            decoded = _decoded(body, headers.get("Content-Encoding", ""), self.limit)
        except WireError as exc:
            self._keep = False
            waiter.set_exception(exc)
            return
        waiter.set_result(Response(self._status, headers, decoded))


def _fields(block: bytes) -> list[tuple[str, str]]:
    """The header lines of an answer's head, as names and values (latin-1, decoded once)."""
    pairs: list[tuple[str, str]] = []
    if not block:
        return pairs
    for line in block.decode("latin-1").split("\r\n"):
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip(_ASCII_SPACE) or " " in name:
            raise Broken("The backend sent a malformed header")
        pairs.append((name, value.strip(" \t")))
    return pairs


def _tokens(headers: CIMultiDict[str], name: str) -> list[str]:
    return [t.strip().lower() for v in headers.getall(name, []) for t in v.split(",")]


def _decoded(body: bytes, encoding: str, limit: int) -> bytes:
    """The body without its gzip or deflate coding, never past `limit` bytes."""
    wbits = _DECODED.get(encoding.strip().lower())
    if wbits is None or not body:
        return body
    for bits in (wbits, -zlib.MAX_WBITS) if wbits == zlib.MAX_WBITS else (wbits,):
        decoder = zlib.decompressobj(bits)
        try:
            plain = decoder.decompress(body, limit + 1)
        except zlib.error:
            continue  # deflate is sent with or without its zlib wrapper
        if len(plain) > limit:
            raise TooLarge("The backend's answer is too large")
        if decoder.eof:
            return plain
    raise Corrupt(f"The backend's {encoding} body cannot be decoded")


class Pool:
    """Kept-alive connections to one backend, at most `size` at a time.

    `request` gives each call `timeout` seconds in all (waiting for a connection,
    connecting, sending and the whole answer), or until the `deadline` its caller
    gives (the loop's clock: several attempts of one call share one), and a new
    connection `connect_timeout`.
    """

    def __init__(self, *, size: int, connect_timeout: float, timeout: float, max_body: int) -> None:
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.max_body = max_body
        self._slots = asyncio.Semaphore(size)
        self._idle: deque[_Connection] = deque()
        self._origin: Origin | None = None
        self._tls: ssl.SSLContext | None = None
        self._closed = False

    async def request(
        self,
        method: str,
        base: str,
        path: str,
        headers: dict[str, str],
        body: bytes | None = None,
        params: Mapping[str, str] | None = None,
        *,
        deadline: float | None = None,
    ) -> Response:
        origin = self._at(base)
        target = (
            origin.prefix + path + ("?" + urlencode(params, safe=_QUERY_SAFE) if params else "")
        )
        request = _request(method, target, origin, headers, body)
        loop = asyncio.get_running_loop()
        if deadline is None:
            deadline = loop.time() + self.timeout
        if self._slots.locked():
            await self._slot(deadline - loop.time())
        else:
            await self._slots.acquire()  # free: returns without yielding
        try:
            reused = self._take(loop.time())
            try:
                return await self._exchange(loop, reused, request, method, deadline)
            except Broken:
                if reused is None or reused.received or method not in _IDEMPOTENT:
                    raise
            # A kept-alive connection the backend had closed: once more on a new one.
            return await self._exchange(loop, None, request, method, deadline)
        finally:
            self._slots.release()

    async def _slot(self, wait: float) -> None:
        """A place in a full pool, waited for within the call's deadline."""
        try:
            await asyncio.wait_for(self._slots.acquire(), max(wait, 0))
        except TimeoutError as exc:
            raise ConnectFailed(
                "No free connection to the backend in time", timed_out=True
            ) from exc

    async def close(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()

    def _at(self, base: str) -> Origin:
        if self._origin is None or self._origin.base != base:
            while self._idle:  # connections to where the backend no longer is
                self._idle.pop().close()
            self._origin = Origin.parse(base)
        return self._origin

    def _take(self, now: float) -> _Connection | None:
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed and now - connection.idle_since < IDLE_SECONDS:
                return connection
            connection.close()
        return None

    async def _exchange(
        self,
        loop: asyncio.AbstractEventLoop,
        connection: _Connection | None,
        request: bytes,
        method: str,
        deadline: float,
    ) -> Response:
        if connection is None:
            connection = await self._connect(loop, deadline)
        waiter: asyncio.Future[Response] = loop.create_future()
        timer = loop.call_at(deadline, connection.expire)
        try:
            connection.send(request, waiter, head=method == "HEAD")
            response = await waiter
        except BaseException:
            connection.close()
            raise
        finally:
            timer.cancel()
        if connection.reusable and not self._closed:
            connection.idle_since = loop.time()
            self._idle.append(connection)
        else:
            connection.close()
        return response

    async def _connect(self, loop: asyncio.AbstractEventLoop, deadline: float) -> _Connection:
        origin = self._origin
        assert origin is not None
        wait = min(self.connect_timeout, deadline - loop.time())
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Connection(self.max_body), origin.host, origin.port,
                    ssl=self._context() if origin.tls else None,
                ),
                max(wait, 0),
            )  # fmt: skip
        except TimeoutError as exc:
            raise ConnectFailed("No connection to the backend in time", timed_out=True) from exc
        except (OSError, ssl.SSLError) as exc:
            raise ConnectFailed(f"No connection to the backend: {exc}", timed_out=False) from exc
        return connection

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls


def _request(
    method: str, target: str, origin: Origin, headers: dict[str, str], body: bytes | None
) -> bytes:
    """The request's bytes: head and body in one buffer, for one write."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {origin.host_header}"]
    lines.append("Accept-Encoding: gzip, deflate")
    if origin.authorization is not None and "Authorization" not in headers:
        lines.append(f"Authorization: {origin.authorization}")
    for name, value in headers.items():
        lines.append(f"{name}: {value}")
    if body is not None or method in _WITH_LENGTH:
        lines.append(f"Content-Length: {len(body or b'')}")
    head = "\r\n".join(lines)
    if _BREAK.search("".join((target, *headers.keys(), *headers.values()))):
        raise ValueError("A request line or header holds a line break")
    return head.encode("latin-1") + b"\r\n\r\n" + (body or b"")
