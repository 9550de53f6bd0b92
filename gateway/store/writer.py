"""One SQLite connection on one thread that runs every write: group commit.

`GroupCommit` owns the writer thread and its connection. Work is handed to it from
the event loop and answered back there; writes that queue up while a commit is on
disk, or while another process holds the file's writer lock (`writelock`), are
committed together: each runs in its own savepoint (a failed one rolls back alone)
and none is answered before the shared COMMIT, which with `synchronous=FULL` means
before it is on disk. It knows nothing of the ledger: what a write does, and the
schema the connection is brought to on opening, are its caller's.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from dialects.errors import ServiceUnavailable
from gateway.observability.metrics import STORE_BATCH, STORE_WRITE_SECONDS
from gateway.store.writelock import WriteLock

T = TypeVar("T")
# The most jobs taken off the queue at once (reads among them run alone).
MAX_BATCH = 64
log = logging.getLogger("gateway.store")
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6
MEMORY = ":memory:"


@dataclass
class _Job:
    fn: Callable[[], Any]
    write: bool
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]

    def settle(self, result: Any = None, error: BaseException | None = None) -> None:
        self.loop.call_soon_threadsafe(_settle, self.future, result, error)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the caller went away; the work itself stands
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class GroupCommit:
    """The single writer of one SQLite file, in WAL mode, committing writes in groups.

    `prepare` brings a newly opened connection's schema up to date; it runs in one
    `BEGIN IMMEDIATE` of its own, under the writer lock, so processes opening one new
    file together take turns at it. A group whose ROLLBACK fails costs the connection:
    it is answered 503 and the next write opens a new one, so the thread outlives any
    database fault.
    """

    def __init__(
        self,
        path: str,
        *,
        prepare: Callable[[sqlite3.Connection], None],
        synchronous: str = "FULL",
        busy_timeout_ms: int = 10_000,
        factory: type[sqlite3.Connection] = sqlite3.Connection,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self.path = path
        self._prepare = prepare
        self._synchronous = synchronous
        self._busy_timeout_ms = busy_timeout_ms
        self._factory = factory
        self._max_batch = max_batch
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._db: sqlite3.Connection | None = None
        self._lock: WriteLock | None = None  # none for :memory:, which no one shares
        self._lost = False  # the connection was dropped after a fault: reopen it

    # --- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Start the thread and open the connection; stopped again if it cannot open."""
        self._thread = threading.Thread(target=self._serve, name="sqlite", daemon=True)
        self._thread.start()
        try:
            await self._submit(self._connect, write=False)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        if self._thread is None:
            return
        if self._db is not None:
            await self._submit(self._disconnect, write=False)
        self._jobs.put(None)
        await asyncio.to_thread(self._thread.join)
        self._thread = None

    # --- work from the event loop --------------------------------------------------

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn` on the writer's connection, between groups, outside any transaction."""
        return await self._submit(lambda: fn(self._conn()), write=False)

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn` in a savepoint of the next group's transaction, answered once committed."""
        started = time.perf_counter()
        try:
            return await self._submit(lambda: fn(self._conn()), write=True)
        finally:
            STORE_WRITE_SECONDS.observe(time.perf_counter() - started)

    async def _submit(self, fn: Callable[[], T], *, write: bool) -> T:
        if self._thread is None:
            raise RuntimeError("store is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put(_Job(fn, write, loop, future))
        return await future

    # --- the connection --------------------------------------------------------------

    def _connect(self) -> None:
        if self.path != MEMORY:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, factory=self._factory
        )
        try:
            # The busy timeout first, then the writer lock around the switch to WAL and
            # the schema: processes opening one new file together take turns at them
            # (SQLite answers a journal-mode switch that meets another process's set-up
            # "busy" at once, without waiting in its busy handler).
            db.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
            if self._lock is None and self.path != MEMORY:
                self._lock = WriteLock(self.path)
            with self._locked():
                db.execute("PRAGMA journal_mode=WAL")
                self._prepare_schema(db)
            db.execute(f"PRAGMA synchronous={self._synchronous}")
            db.execute("PRAGMA foreign_keys=ON")
        except BaseException:
            db.close()
            raise
        self._db = db

    def _prepare_schema(self, db: sqlite3.Connection) -> None:
        """`prepare` in one `BEGIN IMMEDIATE`: other processes wait for it."""
        db.execute("BEGIN IMMEDIATE")
        try:
            self._prepare(db)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _disconnect(self) -> None:
        assert self._db is not None
        self._db.close()
        self._db = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the writer lock for a block, unless the caller holds it already."""
        lock = self._lock
        if lock is None or lock.held:
            yield
            return
        lock.acquire()
        try:
            yield
        finally:
            lock.release()

    def _conn(self) -> sqlite3.Connection:
        if self._db is None and self._lost:
            try:
                self._connect()  # the connection a failed ROLLBACK cost
            except (sqlite3.Error, OSError) as exc:
                raise ServiceUnavailable("The database is unavailable", retry_after=1) from exc
            self._lost = False
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    # --- the writer thread -------------------------------------------------------------

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            if job.write and self._lock is not None:
                # The lock first, then the batch: the writes that queue up while
                # another process commits join this one's transaction.
                self._lock.acquire()
            try:
                self._run_batch(self._gather(job))
            finally:
                if self._lock is not None:
                    self._lock.release()

    def _gather(self, job: _Job) -> list[_Job]:
        """`job` and those queued behind it, up to a batch's worth."""
        batch = [job]
        while len(batch) < self._max_batch:
            try:
                queued = self._jobs.get_nowait()
            except queue.Empty:
                break
            if queued is None:
                self._jobs.put(None)  # stop after this batch
                break
            batch.append(queued)
        return batch

    def _run_batch(self, batch: list[_Job]) -> None:
        """Reads run alone; each run of consecutive writes shares one transaction."""
        writes: list[_Job] = []
        for job in batch:
            if job.write:
                writes.append(job)
                continue
            self._commit_group(writes)
            writes = []
            try:
                job.settle(job.fn())
            except BaseException as exc:  # handed to the caller, never lost here
                job.settle(error=busy_to_unavailable(exc))
        self._commit_group(writes)

    def _commit_group(self, writes: list[_Job]) -> None:
        if not writes:
            return
        STORE_BATCH.observe(len(writes))
        try:
            db = self._conn()
        except ServiceUnavailable as exc:
            for job in writes:
                job.settle(error=exc)
            return
        if self._lock is not None:
            self._lock.acquire()  # a no-op when the batch began with a write
        try:
            outcomes = self._transaction(db, writes)
        except BaseException as exc:
            failure = self._abort(db, exc)
            for job in writes:
                job.settle(error=busy_to_unavailable(failure))
            return
        finally:
            if self._lock is not None:
                self._lock.release()  # before the answers: the other process goes on
        for job, (result, error) in zip(writes, outcomes, strict=True):
            job.settle(result, error)

    @staticmethod
    def _transaction(
        db: sqlite3.Connection, writes: list[_Job]
    ) -> list[tuple[Any, BaseException | None]]:
        """Run the writes in one transaction, each in a savepoint of its own."""
        outcomes: list[tuple[Any, BaseException | None]] = []
        db.execute("BEGIN IMMEDIATE")
        for job in writes:
            db.execute("SAVEPOINT job")
            try:
                outcomes.append((job.fn(), None))
            except BaseException as exc:
                db.execute("ROLLBACK TO job")
                outcomes.append((None, exc))
            db.execute("RELEASE job")
        db.execute("COMMIT")
        return outcomes

    def _abort(self, db: sqlite3.Connection, exc: BaseException) -> BaseException:
        """Roll back a failed group; if even ROLLBACK fails, start on a new connection.

        The worker thread must outlive any database fault: the group is then answered
        503 and the next one finds a connection with no transaction left open.
        """
        try:
            if db.in_transaction:
                db.execute("ROLLBACK")
            return exc
        except sqlite3.Error as failed:
            log.error("ROLLBACK failed (%s); reopening the database", failed)
        self._db, self._lost = None, True
        try:
            db.close()
            self._connect()
            self._lost = False
        except (sqlite3.Error, OSError) as failed:
            log.error("cannot reopen the database (%s); will retry", failed)
        return ServiceUnavailable("The database failed; retry shortly", retry_after=1)


def busy_to_unavailable(exc: BaseException) -> BaseException:
    """Another process held the write lock past the busy timeout: a 503, not a 500."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if isinstance(exc, sqlite3.OperationalError) and code in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return ServiceUnavailable("The database is busy; retry shortly", retry_after=1)
    return exc
