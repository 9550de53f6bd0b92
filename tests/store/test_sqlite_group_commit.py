"""The SQLite writer (`GroupCommit`): writes that queue up share one commit, each alone
in its savepoint; reads run between groups; and the ledger template runs to its end on
the writer's thread."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Generator
from pathlib import Path
from typing import Any

import pytest

from gateway.store.base import finished
from gateway.store.writer import GroupCommit

COMMITS: list[str] = []


class CountingConnection(sqlite3.Connection):
    """A connection that notes each COMMIT it runs (of the writer's transactions)."""

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql == "COMMIT":
            COMMITS.append(sql)
        return super().execute(sql, *args)


def make_table(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS written (n INTEGER NOT NULL)")


@pytest.fixture
async def writer(tmp_path: Path) -> AsyncIterator[GroupCommit]:
    started = GroupCommit(
        str(tmp_path / "group.db"), prepare=make_table, factory=CountingConnection
    )
    await started.start()
    COMMITS.clear()  # the schema's own commit is not a group's
    yield started
    await started.stop()


def insert(n: int) -> Callable[[sqlite3.Connection], int]:
    def write(db: sqlite3.Connection) -> int:
        db.execute("INSERT INTO written VALUES (?)", (n,))
        return n

    return write


def refuse(n: int) -> Callable[[sqlite3.Connection], int]:
    def write(db: sqlite3.Connection) -> int:
        insert(n)(db)
        raise ValueError(f"refused {n}")

    return write


def read_all(db: sqlite3.Connection) -> list[int]:
    return [row[0] for row in db.execute("SELECT n FROM written ORDER BY n")]


async def behind_a_held_write(writer: GroupCommit, *work: Coroutine[Any, Any, Any]) -> list[Any]:
    """Run `work` (writes and reads made but not yet queued) while the writer thread is
    inside a write of its own, let that write go once all of them are queued, and
    gather what each came to (an error as the exception)."""
    entered, release = threading.Event(), threading.Event()

    def held(db: sqlite3.Connection) -> int:
        entered.set()
        release.wait()
        return 0

    holder = asyncio.ensure_future(writer.write(held))
    await asyncio.to_thread(entered.wait)
    queued = [asyncio.ensure_future(w) for w in work]
    # Called back after every task above has run up to its wait: each job is queued.
    asyncio.get_running_loop().call_soon(release.set)
    await holder
    return await asyncio.gather(*queued, return_exceptions=True)


async def test_writes_that_queue_up_behind_a_commit_share_the_next_one(
    writer: GroupCommit,
) -> None:
    done = await behind_a_held_write(writer, *(writer.write(insert(n)) for n in range(1, 11)))

    assert done == list(range(1, 11))
    assert len(COMMITS) == 2, "the held write's commit, then one for the ten"
    assert await writer.read(read_all) == list(range(1, 11))


async def test_a_failed_write_is_undone_alone_and_the_rest_of_its_group_commits(
    writer: GroupCommit,
) -> None:
    done = await behind_a_held_write(
        writer, writer.write(insert(1)), writer.write(refuse(2)), writer.write(insert(3))
    )

    assert done[0] == 1 and done[2] == 3
    assert isinstance(done[1], ValueError) and str(done[1]) == "refused 2"
    assert len(COMMITS) == 2
    assert await writer.read(read_all) == [1, 3]


async def test_a_read_between_writes_runs_alone_and_sees_the_writes_before_it(
    writer: GroupCommit,
) -> None:
    done = await behind_a_held_write(
        writer, writer.write(insert(1)), writer.read(read_all), writer.write(insert(2))
    )

    assert done == [1, [1], 2]
    assert len(COMMITS) == 3, "the held write, the write before the read, the one after"


async def test_a_stopped_writer_takes_no_work(writer: GroupCommit) -> None:
    await writer.stop()

    with pytest.raises(RuntimeError, match="not open"):
        await writer.write(insert(1))


class Suspends:
    """An awaitable that hands control back to whoever drives the coroutine, once."""

    def __await__(self) -> Generator[None, None, None]:
        yield


def test_a_template_whose_database_never_waits_runs_to_its_end_without_a_loop() -> None:
    async def steps() -> int:
        return 7

    async def waits() -> int:
        await Suspends()  # what a driver that waits on an event loop does
        return 7

    assert finished(steps()) == 7
    with pytest.raises(RuntimeError, match="waited"):
        finished(waits())
