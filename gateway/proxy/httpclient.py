"""A lean HTTP/1.1 client for one backend: pooled keep-alive connections, one write a request.

The proxy's hop spends its time in per-request Python, so this client does only what a
backend call needs: the request in one write on a TCP_NODELAY socket, the answer parsed
as it arrives by llhttp (`httptools`: status line, headers, Content-Length, chunked or
close-delimited bodies), gzip and deflate decoding bounded like the raw body, a total
deadline per call and a connect deadline per connection. What goes wrong is told by the exception's kind,
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

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

from dialects.parsing import ascii_number

MAX_HEAD = 64 * 1024  # the status line and headers of one answer together
MAX_CHUNK_LINE = 1024  # a chunk-size line, extensions included
IDLE_SECONDS = 5.0  # a pooled connection idle longer is dropped: backends close idle ones
_QUERY_SAFE = "?/:@!$'()*,"  # what stays unescaped in a query value, as aiohttp's yarl does
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_WITH_LENGTH = frozenset({"POST", "PUT", "PATCH"})  # sent with a length even when empty
_BREAK = re.compile("[\r\n\0]")
_NO_BODY = frozenset({204, 304})
_DECODED = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
Framing = Literal["none", "length", "chunked", "close"]
_NO_HEADERS: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())


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


class _Surplus(Exception):
    """Bytes after the whole answer: the connection cannot be trusted with another call."""


class _Connection(asyncio.Protocol):
    """One kept-alive connection: sends a request; llhttp parses its answer as bytes arrive.

    llhttp (through `httptools`) owns the framing: the status line, the header syntax,
    Content-Length, chunks with their extensions and trailers, a length and chunks
    together, interim 1xx answers and the answers without a body (204, 304). What it
    leaves to this class: the HTTP version (1.0 or 1.1 only), transfer codings other
    than chunked, a body read to the close (the parser is not told of the stream's end),
    the answer to a HEAD (the parser does not know the request), the head's size, the
    body's size as it arrives, and whether the connection may serve another call.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._clean = True  # the parser stands between two answers
        self._waiter: asyncio.Future[Response] | None = None
        self._head_request = False
        self._reset()

    def _reset(self) -> None:
        if not self._clean:
            self._parser = httptools.HttpResponseParser(self)
            self._clean = True
        self.received = False  # any byte of the current answer
        self._status = 0  # the final answer's, once its head is in
        self._fields: list[tuple[bytes, bytes]] = []
        self._headers = _NO_HEADERS
        self._head_size = 0  # bytes received while the head was incomplete
        self._received = 0  # bytes of the answer, framing and all
        self._chunk_count = 0
        self._framing: Framing = "none"
        self._keep = False
        self._chunks: list[bytes] = []
        self._size = 0
        self._done = False  # the answer was handed over
        self._sized = False  # a chunk's size line was the last thing parsed
        self._tail = b""  # the last bytes of a chunked body: a size line may span packets

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
            self._finish(b"".join(self._chunks))
        else:
            waiter.set_exception(Broken("The backend closed the connection mid-answer"))

    def data_received(self, data: bytes) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            self.close()  # bytes nobody asked for: the connection cannot be trusted
            return
        self.received = True
        self._received += len(data)
        if not self._status:
            self._head_size += len(data)
        try:
            self._parser.feed_data(data)
            if not self._status and self._head_size > MAX_HEAD:
                raise Broken("The backend's answer has too large a head")
            if self._framing == "chunked" and not self._done:
                self._chunked(data)
        except (WireError, httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._keep = False
            self.close()
            if not waiter.done():
                waiter.set_exception(_failure(exc))

    def eof_received(self) -> bool:
        return False  # the transport closes; connection_lost ends a close-delimited body

    # --- the parser's callbacks ------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._done:
            raise _Surplus  # the first byte of a second answer to one request

    def on_header(self, name: bytes, value: bytes) -> None:
        self._fields.append((name, value))  # after the head: a chunked body's trailers

    def on_headers_complete(self) -> None:
        parser = self._parser
        status = parser.get_status_code()
        if status < 200:
            self._fields = []  # an interim answer; the real one follows
            return
        version = parser.get_http_version()
        if version != "1.1" and version != "1.0":
            raise Broken("The backend's status line is not HTTP/1.x")
        fields = self._fields
        if self._head_size > MAX_HEAD and sum(len(n) + len(v) + 4 for n, v in fields) > MAX_HEAD:
            raise Broken("The backend's answer has too large a head")
        headers = CIMultiDictProxy(
            CIMultiDict(
                [(n.decode("latin-1"), v.decode("latin-1").rstrip(" \t")) for n, v in fields]
            )
        )
        self._status, self._headers = status, headers
        if self._head_request:
            self._keep = version == "1.1" and "close" not in _tokens(headers, "Connection")
            self._clean = False  # the parser would wait for the body a GET would have had
            self._finish(b"")
            return
        self._keep = version == "1.1" and parser.should_keep_alive()
        if "Transfer-Encoding" in headers:
            if _tokens(headers, "Transfer-Encoding")[-1:] != ["chunked"]:
                raise Broken("The backend sent a transfer coding other than chunked")
            self._framing = "chunked"
        elif "Content-Length" in headers:
            length = ascii_number(headers["Content-Length"])
            if length is None:
                raise Broken("The backend sent an unreadable Content-Length")
            if length > self.limit:
                raise TooLarge("The backend's answer is too large")
            self._framing = "length"
        elif status not in _NO_BODY:
            self._framing = "close"

    def on_chunk_header(self) -> None:
        self._sized = True
        self._chunk_count += 1

    def on_body(self, body: bytes) -> None:
        if self._done:
            raise _Surplus  # a body after the head of the answer to a HEAD
        self._sized = False
        self._size += len(body)
        if self._size > self.limit:
            raise TooLarge("The backend's answer is too large")
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        if self._done:
            self._clean = True  # a HEAD's answer that said it has no body
        elif self._status:
            self._finish(b"".join(self._chunks))

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
        return self._keep and not self.closed

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _chunked(self, data: bytes) -> None:
        """What llhttp leaves unbounded in a chunked body, bounded.

        Size lines with their extensions, and trailers, are not body: together they
        may take a head's size for the trailers and `MAX_CHUNK_LINE` a chunk (llhttp
        would read endless extensions, and `httptools` gathers a header value in
        memory until its line ends). A chunk declared larger than the limit is refused
        before its bytes come: llhttp does not tell a chunk's size, so when a packet
        ends with a size line the parser accepted, that line, the packet's last, is
        read here for its number only.
        """
        framing = self._received - self._size
        if framing > 2 * MAX_HEAD + MAX_CHUNK_LINE * (self._chunk_count + 1):
            raise Broken("The backend's chunk size lines or trailers are too large")
        if self._sized and data.endswith(b"\r\n"):  # the packet ends with a whole line
            self._sized = False  # the size line, or after the last chunk's a trailer
            text = data if len(data) > MAX_CHUNK_LINE else self._tail + data
            line = text[text.rfind(b"\n", 0, len(text) - 1) + 1 : -2].split(b";", 1)[0]
            size = ascii_number(line.decode("latin-1"), digits=16, base=16)
            if size is not None and self._size + size > self.limit:
                raise TooLarge("The backend's answer is too large")
        self._tail = (data if len(data) >= MAX_CHUNK_LINE else self._tail + data)[-MAX_CHUNK_LINE:]

    def _finish(self, body: bytes) -> None:
        waiter = self._waiter
        assert waiter is not None
        self._done = True
        headers = self._headers
        try:
            decoded = _decoded(body, headers.get("Content-Encoding", ""), self.limit)
        except WireError as exc:
            self._keep = False
            waiter.set_exception(exc)
            return
        waiter.set_result(Response(self._status, headers, decoded))


def _failure(exc: Exception) -> WireError:
    """What a parser's refusal, or one raised from its callbacks, means for the call."""
    if isinstance(exc, WireError):
        return exc
    if isinstance(exc.__context__, WireError):
        return exc.__context__  # raised by a callback: llhttp wraps it
    return Broken(f"The backend's answer breaks HTTP: {exc}")


def _tokens(headers: CIMultiDictProxy[str], name: str) -> list[str]:
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
