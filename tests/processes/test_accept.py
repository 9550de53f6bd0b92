"""Workers accepting from one listening socket by turns (gateway.processes.accept), on asyncio and uvloop."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import cast

import pytest
import uvloop

from gateway.processes.accept import Acceptor, Seat
from gateway.processes.balance import Table, Turns

LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
WAIT = 1.0  # seconds of the injected clock, which only moves when a test moves it


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Greeter(asyncio.Protocol):
    """Says hi on each connection; `lost` learns of each close."""

    def __init__(self, lost: asyncio.Queue[None]) -> None:
        self.lost = lost

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        cast(asyncio.WriteTransport, transport).write(b"hi")

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.put_nowait(None)


@contextmanager
def listening() -> Iterator[socket.socket]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        sock.setblocking(False)
        yield sock


class Workers:
    """Acceptors in one event loop, each on its own descriptor of one listening socket."""

    def __init__(self, sock: socket.socket, count: int, clock: Clock) -> None:
        self.port = sock.getsockname()[1]
        self.table = Table(count)
        self.lost: asyncio.Queue[None] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        self.acceptors = []
        for slot in range(count):
            seat = Seat(sock.dup(), self.table, slot)
            turns = Turns(self.table, slot, WAIT, clock)
            self.acceptors.append(Acceptor(seat, lambda: Greeter(self.lost), turns, loop))

    async def greeted(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert await asyncio.wait_for(reader.readexactly(2), 30) == b"hi"
        return reader, writer

    def close(self) -> None:
        for acceptor in self.acceptors:
            acceptor.stop()
            acceptor.seat.sock.close()


def run(loop: str, test: Callable[[socket.socket], Coroutine[None, None, None]]) -> None:
    with listening() as sock, asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        runner.run(test(sock))


@pytest.mark.parametrize("loop", LOOPS)
def test_connections_opened_together_are_split_evenly_and_counted_until_closed(
    loop: str,
) -> None:
    async def test(sock: socket.socket) -> None:
        workers = Workers(sock, 2, Clock())
        for acceptor in workers.acceptors:
            acceptor.start()
        held = await asyncio.gather(*(workers.greeted() for _ in range(16)))
        assert (workers.table.held(0), workers.table.held(1)) == (8, 8)
        for _, writer in held:
            writer.close()
        for _ in held:
            await asyncio.wait_for(workers.lost.get(), 30)
        assert (workers.table.held(0), workers.table.held(1)) == (0, 0)
        workers.close()

    run(loop, test)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_worker_that_stopped_accepting_leaves_new_connections_to_the_others(
    loop: str,
) -> None:
    async def test(sock: socket.socket) -> None:
        workers = Workers(sock, 2, Clock())
        first, second = workers.acceptors
        first.start()
        second.start()
        held = await asyncio.gather(*(workers.greeted() for _ in range(4)))
        first.stop()  # draining
        held += await asyncio.gather(*(workers.greeted() for _ in range(4)))
        assert (workers.table.held(0), workers.table.held(1)) == (2, 6)
        for _, writer in held:
            writer.close()
        workers.close()

    run(loop, test)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_connection_no_other_worker_takes_is_taken_once_the_wait_is_over(loop: str) -> None:
    async def test(sock: socket.socket) -> None:
        clock = Clock()
        workers = Workers(sock, 2, clock)
        acceptor = workers.acceptors[0]
        workers.table.join(1, 4242)  # a worker that accepts nothing: stopped, or stuck
        acceptor.start()
        workers.table.opened(0)  # the live worker holds one connection more than it
        reader, writer = await asyncio.open_connection("127.0.0.1", workers.port)
        for _ in range(10_000):  # until the live worker has seen the connection wait
            if acceptor.turns.since is not None:
                break
            await asyncio.sleep(0)
        assert acceptor.turns.since is not None and workers.table.held(0) == 1
        clock.now += WAIT
        assert await asyncio.wait_for(reader.readexactly(2), 30) == b"hi"
        assert workers.table.held(0) == 2
        writer.close()
        workers.close()

    run(loop, test)
