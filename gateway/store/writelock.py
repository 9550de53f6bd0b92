"""One OS lock per SQLite file that the writers of every process take in turn.

SQLite lets one writer at a time into a file; a writer that finds the write lock
taken is put to sleep by its busy handler in growing steps (1, 2, 5, 10 ... 100 ms),
so with two processes writing, the waiting one sleeps far longer than the holder
needs. An `flock` on a file beside the database, taken by each process's writer
thread around its write transaction, makes the writers queue in the kernel instead:
the waiter blocks in `flock` (its thread only; the GIL is released) and wakes as
soon as the holder lets go, and SQLite's own lock is then always free, so its busy
handler never runs. The kernel drops an `flock` when its holder dies, even by
SIGKILL, so a crashed worker never leaves the others waiting.

The lock is advisory: a writer that does not take it (the `sqlite3` shell, an
older gateway) is still kept out by SQLite's own lock and the busy timeout.
"""

from __future__ import annotations

import fcntl
import os


def lock_path(database: str) -> str:
    """The lock file's name: beside the database, like SQLite's `-wal` and `-shm`."""
    return f"{database}-writer"


class WriteLock:
    """The database's writer lock as this process holds it (or not).

    Opened by the process that uses it (never inherited through a fork: an `flock`
    belongs to the open file, so a child holding a copy would share the parent's
    lock). Used from one thread: `acquire` when already held and `release` when not
    held do nothing.
    """

    def __init__(self, database: str) -> None:
        self.path = lock_path(database)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self.held = False

    def acquire(self) -> None:
        if not self.held:
            fcntl.flock(self._fd, fcntl.LOCK_EX)  # blocks this thread only
            self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing the file also drops a lock still held
            self._fd, self.held = -1, False
