"""The outbox's ordering on PostgreSQL, where writers of many processes run at once: an event
never becomes visible while a transaction holding an earlier sequence is still open.

A feed reader that saw sequence n+1 before n committed would move its cursor past n and
never see it. The test holds one writer's transaction open after its events (its second
step's rule waits, on a thread of its own), lets a second writer try, and reads the feed
as soon as that writer has either committed or is waiting on a lock.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import asyncpg

from dialects.model import Invoice, Payment
from gateway.store import Change, PostgresStore, Rule, Step, open_store

from ..postgres import Cluster
from .test_contract import _new, _pay


def _held(started: threading.Event, release: threading.Event) -> Rule:
    """A rule that keeps its transaction open until `release` is set (changing nothing)."""

    def rule(invoice: Invoice, current: Payment | None) -> Change:
        started.set()
        release.wait()
        return Change(marked_paid=invoice.marked_paid)

    return rule


async def test_no_event_is_visible_while_an_earlier_sequence_is_uncommitted(
    postgres: Cluster,
) -> None:
    schema = postgres.create()
    try:
        await _check_ordering(postgres, schema)
    finally:
        postgres.drop(schema)


async def _check_ordering(postgres: Cluster, schema: str) -> None:
    url = postgres.url(schema)
    first, second = f"{schema}_first", f"{schema}_second"
    reader = open_store(url)
    await reader.open()
    try:
        a, b, c = [await reader.create_invoice(_new(f"INV-{n}")) for n in range(3)]
        started, release = threading.Event(), threading.Event()

        def hold() -> None:
            """The first writer, on its own loop: a payment on `a`, then a held step on `b`."""

            async def write() -> None:
                store = PostgresStore(f"{url}&application_name={first}")
                await store.open()
                try:
                    steps = [Step(a.id, _pay("1.00")), Step(b.id, _held(started, release))]
                    await store.apply_many("acme", steps)
                finally:
                    await store.close()

            asyncio.run(write())

        holder = threading.Thread(target=hold)
        holder.start()
        try:
            await asyncio.to_thread(started.wait)
            later = PostgresStore(f"{url}&application_name={second}")
            await later.open()
            try:
                writing = asyncio.create_task(later.apply("acme", c.id, _pay("2.00")))
                watcher = await asyncpg.connect(postgres.url())
                try:
                    while not writing.done() and not await _waits(watcher, second):
                        pass  # each look is a round trip, in which the write goes on
                finally:
                    await watcher.close()
                # The first writer holds sequences 1 and 2: nothing after them is visible.
                seen = await reader.events("acme", 0, 10)
                assert [event.sequence for event in seen.events] == []
                release.set()
                await writing
            finally:
                release.set()
                await later.close()
        finally:
            release.set()
            await asyncio.to_thread(holder.join)
        page = await reader.events("acme", 0, 10)
        assert [(e.sequence, e.type) for e in page.events] == [
            (1, "payment.created"), (2, "invoice.updated"),
            (3, "payment.created"), (4, "invoice.updated"),
        ]  # fmt: skip
        invoices = [e.data["invoice"]["id"] for e in page.events]
        assert invoices == [a.id, a.id, c.id, c.id]
    finally:
        await reader.close()


async def _waits(watcher: asyncpg.Connection[Any], application: str) -> bool:
    """Whether the connection named `application` waits on a lock."""
    found = await watcher.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
        " AND wait_event_type = 'Lock'",
        application,
    )
    return bool(found)
