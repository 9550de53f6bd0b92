"""Which `--workers` worker takes a new connection: a table of open connections they all see.

The parent makes the table before it forks (anonymous shared memory, so every worker
sees the same cells) and the workers accept from one listening socket. A worker takes
a pending connection at once while no other accepting worker holds fewer open
connections than it does; otherwise it leaves the connection to them for a short
while (`Turns`) and takes it itself if it is still pending then, so a worker that is
busy, stopped or dead never strands a client. Long-lived keep-alive connections (a
load generator's, a proxy's pool) thus end up split as evenly as they can be, where a
hash of addresses (SO_REUSEPORT) or whichever worker wakes first splits them as a
coin toss does.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable

_CELLS = 2  # per worker slot: its pid while it accepts (0 otherwise), its open connections
_PID, _HELD = 0, 1


class Table:
    """Each worker slot's accepting pid and open connections, shared across fork().

    A worker writes only its own slot's cells (the parent clears a dead worker's);
    each cell is one aligned 8-byte word, written and read whole.
    """

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._memory = mmap.mmap(-1, slots * _CELLS * 8)  # MAP_SHARED | MAP_ANONYMOUS
        self._cells = memoryview(self._memory).cast("q")

    def join(self, slot: int, pid: int) -> None:
        """The worker in `slot` (a fresh process, holding nothing yet) starts accepting."""
        self._cells[slot * _CELLS + _HELD] = 0
        self._cells[slot * _CELLS + _PID] = pid

    def leave(self, slot: int) -> None:
        """The worker in `slot` stops accepting (it drains what it holds)."""
        self._cells[slot * _CELLS + _PID] = 0

    def clear(self, slot: int) -> None:
        """The worker in `slot` is gone: it neither accepts nor holds anything."""
        self.leave(slot)
        self._cells[slot * _CELLS + _HELD] = 0

    def opened(self, slot: int) -> None:
        self._cells[slot * _CELLS + _HELD] += 1

    def closed(self, slot: int) -> None:
        self._cells[slot * _CELLS + _HELD] -= 1

    def held(self, slot: int) -> int:
        return self._cells[slot * _CELLS + _HELD]

    def accepting(self) -> dict[int, int]:
        """Open connections by pid, of every worker accepting now."""
        cells = self._cells
        return {
            cells[at + _PID]: cells[at + _HELD]
            for at in range(0, self.slots * _CELLS, _CELLS)
            if cells[at + _PID]
        }

    def ahead(self, slot: int) -> bool:
        """Whether another accepting worker holds fewer open connections than `slot`."""
        cells = self._cells
        mine = cells[slot * _CELLS + _HELD]
        for at in range(0, self.slots * _CELLS, _CELLS):
            if cells[at + _PID] and cells[at + _HELD] < mine:
                return True
        return False


class Turns:
    """Whether the worker in `slot` takes a pending connection now.

    Yes while no other accepting worker holds fewer connections; otherwise not until
    the connection has waited `wait` seconds (by `clock`) for the others, then yes
    once. `wait` 0: always yes (whichever worker wakes first takes it).
    """

    def __init__(self, table: Table, slot: int, wait: float, clock: Callable[[], float]) -> None:
        self.table = table
        self.slot = slot
        self.wait = wait
        self.clock = clock
        self.since: float | None = None  # when this worker began leaving a connection

    def mine(self) -> bool:
        if self.wait <= 0 or not self.table.ahead(self.slot):
            self.since = None
            return True
        now = self.clock()
        if self.since is None:
            self.since = now
            return False
        if now - self.since >= self.wait:
            self.since = None
            return True
        return False

    def taken(self) -> None:
        """No connection is pending any more (another worker took it): stop waiting."""
        self.since = None
