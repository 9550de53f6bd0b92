"""Writers of many processes on one SQLite file: they queue on an OS lock, never busy-wait."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from dialects.model import Invoice, Payment
from gateway.store import Change
from gateway.store.sqlite import SQLiteStore
from gateway.store.writelock import lock_path

from ..sqlite_writer import NoWait, payment
from .test_contract import _new

ROOT = Path(__file__).resolve().parents[2]


def lock_is_free(database: str) -> bool:
    """Whether anyone holds the database's writer lock (asked on a file of our own)."""
    fd = os.open(lock_path(database), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # drops the lock if we got it
    return True


def waiters(database: str) -> int:
    """How many lock requests are blocked on the writer lock (the kernel's /proc/locks)."""
    inode = os.stat(lock_path(database)).st_ino
    lines = Path("/proc/locks").read_text().splitlines()
    return sum(1 for line in lines if "->" in line and f":{inode} " in line)


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait for `condition()` to hold (bounded, polled; no wall-clock assertion)."""
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never: {what}")


@contextmanager
def writer(database: str, invoice: int, *mode: str) -> Iterator[subprocess.Popen[str]]:
    """A `tests.sqlite_writer` process on the database, once it says it is ready."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.sqlite_writer", database, str(invoice), *mode],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()


async def open_store(path: Path) -> SQLiteStore:
    store = NoWait(str(path), synchronous="NORMAL")
    await store.open()
    return store


async def test_a_write_holds_the_writer_lock_only_inside_its_transaction(
    tmp_path: Path,
) -> None:
    database = str(tmp_path / "ledger.db")
    store = await open_store(tmp_path / "ledger.db")
    seen: list[bool] = []

    def look(invoice: Invoice, current: Payment | None) -> Change:
        seen.append(lock_is_free(database))
        return payment(invoice, current)

    try:
        invoice = await store.create_invoice(_new())
        assert lock_is_free(database)
        assert await store.apply("acme", invoice.id, look) is not None
        assert lock_is_free(database)
    finally:
        await store.close()
    assert seen == [False]


async def test_a_second_store_waits_for_the_lock_instead_of_failing_busy(
    tmp_path: Path,
) -> None:
    database = str(tmp_path / "ledger.db")
    first, second = (
        await open_store(tmp_path / "ledger.db"),
        await open_store(tmp_path / "ledger.db"),
    )
    entered, go_on = threading.Event(), threading.Event()

    def slow(invoice: Invoice, current: Payment | None) -> Change:
        entered.set()
        go_on.wait()
        return payment(invoice, current)

    try:
        invoice = await first.create_invoice(_new())
        held = asyncio.ensure_future(first.apply("acme", invoice.id, slow))
        await asyncio.to_thread(entered.wait)
        queued = asyncio.ensure_future(second.apply("acme", invoice.id, payment))
        await until(lambda: waiters(database) == 1, "the second writer blocks on the lock")
        assert not queued.done()
        go_on.set()
        stored = await asyncio.gather(held, queued)
        after = await second.invoice("acme", invoice.id)
    finally:
        go_on.set()
        await first.close()
        await second.close()
    assert all(one is not None for one in stored)  # no 503: SQLite never said busy
    assert after is not None and after.payment_count == 2


async def test_two_processes_writing_at_once_never_meet_a_busy_database(
    tmp_path: Path,
) -> None:
    database = str(tmp_path / "ledger.db")
    store = await open_store(tmp_path / "ledger.db")
    try:
        invoice = await store.create_invoice(_new(total="100000.00"))
        with (
            writer(database, invoice.id, "pay", "300") as one,
            writer(database, invoice.id, "pay", "300") as two,
        ):
            for process in (one, two):
                assert process.stdin is not None
                process.stdin.write("go\n")
                process.stdin.flush()
            reports = [json.loads(p.communicate(timeout=120)[0]) for p in (one, two)]
        after = await store.invoice("acme", invoice.id)
    finally:
        await store.close()
    assert reports == [{"stored": 300, "busy": 0}] * 2
    assert after is not None and after.payment_count == 600


async def test_a_lock_holder_killed_by_sigkill_lets_the_others_write(tmp_path: Path) -> None:
    database = str(tmp_path / "ledger.db")
    store = await open_store(tmp_path / "ledger.db")
    try:
        invoice = await store.create_invoice(_new())
        with writer(database, invoice.id, "hold") as holder:
            assert holder.stdin is not None and holder.stdout is not None
            holder.stdin.write("go\n")
            holder.stdin.flush()
            assert holder.stdout.readline() == "holding\n"
            assert not lock_is_free(database)
            os.kill(holder.pid, signal.SIGKILL)
            holder.wait(timeout=30)
        stored = await store.apply("acme", invoice.id, payment)
        after = await store.invoice("acme", invoice.id)
    finally:
        await store.close()
    assert stored is not None  # neither our lock nor SQLite's was left behind
    assert after is not None and after.payment_count == 1  # the holder's write is gone


async def test_a_new_file_is_switched_to_wal_only_under_the_writer_lock(tmp_path: Path) -> None:
    """Processes opening one new file together take turns at its set-up: SQLite answers a
    journal-mode switch that meets another's set-up "busy" at once, with no busy wait."""
    database = str(tmp_path / "ledger.db")
    Path(lock_path(database)).touch()
    held = os.open(lock_path(database), os.O_RDWR)
    fcntl.flock(held, fcntl.LOCK_EX)  # another process setting the file up
    opening = asyncio.ensure_future(open_store(tmp_path / "ledger.db"))
    try:
        await until(lambda: waiters(database) == 1, "the store waits for the writer lock")
        with sqlite3.connect(database) as db:  # nothing switched while it waits
            assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    finally:
        os.close(held)
    store = await opening
    try:
        with sqlite3.connect(database) as db:
            assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        await store.close()
