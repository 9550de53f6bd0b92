"""A `--workers` worker's accepting: from the socket all workers share, by turns (gateway.balance).

`SharedSite` is an aiohttp site like `SockSite`, except that the worker accepts each
connection itself, when `balance.Turns` says it is its turn, and hands it to aiohttp
(`loop.connect_accepted_socket` with the runner's protocol factory); each connection
counts in the shared table from its accept until it closes. While a worker leaves a
pending connection to the others it stops watching the socket and looks again every
millisecond.
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
from typing import Any

from aiohttp import web
from yarl import URL

from .balance import Table, Turns

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


class _Counted(asyncio.Protocol):
    """aiohttp's protocol for one connection, counted in the table until it closes."""

    __slots__ = ("_inner", "_seat", "_open")

    def __init__(self, inner: asyncio.Protocol, seat: Seat) -> None:
        self._inner = inner
        self._seat = seat
        self._open = True
        seat.table.opened(seat.slot)

    def release(self) -> None:
        if self._open:
            self._open = False
            self._seat.table.closed(self._seat.slot)

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
        self.release()
        self._inner.connection_lost(exc)


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
