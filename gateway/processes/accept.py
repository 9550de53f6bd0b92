"""Accepting connections: watched for clients that stop reading; a `--workers` worker's
turns at the socket all workers share (gateway.balance).

`SharedSite` is an aiohttp site like `SockSite`, except that the worker accepts each
connection itself, when `balance.Turns` says it is its turn, and hands it to aiohttp
(`loop.connect_accepted_socket` with the runner's protocol factory); each connection
counts in the shared table from its accept until it closes. While a worker leaves a
pending connection to the others it stops watching the socket and looks again every
millisecond.

`Runner` serves every connection, in one process or many, watched for a client that
stops reading its answers (`_Watched`: server.write_buffer_bytes, write_timeout_seconds).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import select
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web
from yarl import URL

from gateway.observability import metrics
from gateway.observability.logs import event
from gateway.processes.balance import Table, Turns

log = logging.getLogger("gateway")

_LOOK_AGAIN = 0.001  # seconds between looks while leaving a connection to the others
_BURST = 64  # accepts per wake-up at most, so a flood of connections cannot starve requests
_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
_RESOURCES_PAUSE = 1.0  # out of descriptors or memory: stop accepting this long (as asyncio)


@dataclass(frozen=True)
class Seat:
    """What a worker accepts with: the shared listening socket, the table, its slot."""

    sock: socket.socket
    table: Table
    slot: int


@dataclass(frozen=True)
class WriteLimits:
    """What one connection may leave unread, and for how long (`server.write_*`)."""

    buffer_bytes: int  # answers waiting in the process past which writing pauses
    timeout: float  # seconds writing may stay paused before the connection is aborted


class _Wrapper(asyncio.Protocol):
    """aiohttp's protocol for one connection, every event passed on to it."""

    __slots__ = ("_inner",)

    def __init__(self, inner: asyncio.Protocol) -> None:
        self._inner = inner

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._inner.connection_lost(exc)


class _Watched(_Wrapper):
    """aiohttp's protocol for one connection, closed when its client stops reading.

    A client that pipelines requests and reads none of the answers fills the kernel's
    buffers, then the transport's: past `buffer_bytes` the transport pauses writing,
    and aiohttp waits (in `drain`) before it writes or reads anything more on that
    connection. aiohttp sets no bound on that wait; here, writing still paused
    `timeout` seconds later aborts the connection, which frees its buffers (the
    process's and the kernel's) and drops its pipelined requests. A client that reads,
    however slowly, resumes writing below the transport's low-water mark, and the
    clock starts again at the next pause.
    """

    __slots__ = ("_limits", "_transport", "_timer")

    def __init__(self, inner: asyncio.Protocol, limits: WriteLimits) -> None:
        super().__init__(inner)
        self._limits = limits
        self._transport: asyncio.WriteTransport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        writer = cast(asyncio.WriteTransport, transport)  # (uvloop's registers as none)
        writer.set_write_buffer_limits(high=self._limits.buffer_bytes)
        self._transport = writer
        super().connection_made(transport)

    def pause_writing(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._limits.timeout, self._unread_too_long)
        super().pause_writing()

    def resume_writing(self) -> None:
        self._stop_timer()
        super().resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        super().connection_lost(exc)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _unread_too_long(self) -> None:
        self._timer = None
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        peer = transport.get_extra_info("peername")
        event(
            "slow_reader_closed",
            address=peer[0] if isinstance(peer, tuple) else None,
            unread_bytes=transport.get_write_buffer_size(),
            seconds=self._limits.timeout,
        )
        metrics.child(metrics.CONNECTIONS_CLOSED, "write_timeout").inc()
        transport.abort()


class _Watching:
    """A protocol factory: the runner's, each protocol it makes watched (`_Watched`)."""

    __slots__ = ("_inner", "_limits")

    def __init__(self, inner: Callable[[], asyncio.Protocol], limits: WriteLimits) -> None:
        self._inner = inner
        self._limits = limits

    def __call__(self) -> asyncio.Protocol:
        return _Watched(self._inner(), self._limits)


class Runner(web.AppRunner):
    """An AppRunner whose sites serve every connection watched for a client not reading.

    Sites (aiohttp's TCPSite, SharedSite) take `runner.server` as their protocol
    factory; the runner itself keeps using the server underneath.
    """

    def __init__(self, app: web.Application, limits: WriteLimits, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._limits = limits

    @property
    def server(self) -> _Watching | None:  # type: ignore[override]  # a factory, as sites use it
        inner = super().server
        return None if inner is None else _Watching(inner, self._limits)


class _Counted(_Wrapper):
    """aiohttp's protocol for one connection, counted in the table until it closes."""

    __slots__ = ("_seat", "_open")

    def __init__(self, inner: asyncio.Protocol, seat: Seat) -> None:
        super().__init__(inner)
        self._seat = seat
        self._open = True
        seat.table.opened(seat.slot)

    def release(self) -> None:
        if self._open:
            self._open = False
            self._seat.table.closed(self._seat.slot)

    def connection_lost(self, exc: Exception | None) -> None:
        self.release()
        super().connection_lost(exc)


class Acceptor:
    """Accepts from `seat.sock` when it is this worker's turn; serves with `factory`."""

    def __init__(
        self,
        seat: Seat,
        factory: Callable[[], asyncio.Protocol],
        turns: Turns,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.seat = seat
        self.factory = factory
        self.turns = turns
        self.loop = loop
        self._fd = seat.sock.fileno()
        self._poll = select.poll()
        self._poll.register(self._fd, select.POLLIN)
        self._watching = False
        self._timer: asyncio.TimerHandle | None = None
        self._starting: set[asyncio.Future[Any]] = set()

    def start(self) -> None:
        self.seat.table.join(self.seat.slot, os.getpid())
        self._watch(True)

    def stop(self) -> None:
        """Accept no more; what is pending stays queued for the other workers."""
        self.seat.table.leave(self.seat.slot)
        self._watch(False)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _watch(self, on: bool) -> None:
        if on and not self._watching:
            self.loop.add_reader(self._fd, self._ready)
        elif not on and self._watching:
            self.loop.remove_reader(self._fd)
        self._watching = on

    def _ready(self) -> None:
        if self._watching:  # not a wake-up queued before stop()
            self._after(self._take())

    def _look_again(self) -> None:
        self._timer = None
        if self._poll.poll(0):
            self._after(self._take())
        else:  # nothing pending: another worker took it
            self.turns.taken()
            self._after(None)

    def _after(self, delay: float | None) -> None:
        """Watch the socket (None), or look again after `delay` seconds without it."""
        if delay is None:
            self._watch(True)
        else:
            self._watch(False)
            self._timer = self.loop.call_later(delay, self._look_again)

    def _take(self) -> float | None:
        """Accept while it is this worker's turn; then None, or how long to leave the socket."""
        for _ in range(_BURST):
            if not self.turns.mine():
                return _LOOK_AGAIN
            try:
                conn, _ = self.seat.sock.accept()
            except (BlockingIOError, InterruptedError):
                self.turns.taken()
                return None
            except OSError as exc:  # that client is gone (ECONNABORTED ...): the next
                if exc.errno in _RESOURCES:
                    log.error("cannot accept connections for %g s: %s", _RESOURCES_PAUSE, exc)
                    return _RESOURCES_PAUSE
                continue
            self._serve(conn)
        return None

    def _serve(self, conn: socket.socket) -> None:
        conn.setblocking(False)
        protocol = _Counted(self.factory(), self.seat)
        task = self.loop.create_task(self.loop.connect_accepted_socket(lambda: protocol, conn))
        self._starting.add(task)
        task.add_done_callback(lambda done: self._started(done, protocol))

    def _started(self, task: asyncio.Future[Any], protocol: _Counted) -> None:
        self._starting.discard(task)
        if task.cancelled() or task.exception() is not None:
            protocol.release()  # the transport, which owned the socket, closed it


class SharedSite(web.BaseSite):
    """An aiohttp site on a listening socket other workers accept from too, by turns."""

    __slots__ = ("_seat", "_wait", "_acceptor")

    def __init__(self, runner: web.BaseRunner, seat: Seat, wait: float) -> None:
        super().__init__(runner)
        self._seat = seat
        self._wait = wait
        self._acceptor: Acceptor | None = None

    @property
    def name(self) -> str:
        host, port = self._seat.sock.getsockname()[:2]
        return str(URL.build(scheme="http", host=host, port=port))

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        factory = self._runner.server
        assert factory is not None  # the runner is set up (BaseSite checks)
        turns = Turns(self._seat.table, self._seat.slot, self._wait, loop.time)
        self._acceptor = Acceptor(self._seat, factory, turns, loop)
        self._acceptor.start()

    async def stop(self) -> None:
        if self._acceptor is not None:
            self._acceptor.stop()
        await super().stop()
