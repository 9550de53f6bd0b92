"""A process writing to a shared SQLite file, for the tests of writers in many processes.

    python -m tests.sqlite_writer PATH INVOICE pay COUNT   # COUNT payments, then a report
    python -m tests.sqlite_writer PATH INVOICE hold        # stop inside a write, forever

Each opens its own store with no busy timeout, so a write that meets another
process's transaction fails at once (503) instead of waiting in SQLite's busy
handler. It says `ready` and waits for a line on stdin before it writes.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from decimal import Decimal

from dialects.errors import ServiceUnavailable
from dialects.model import Invoice, Payment
from gateway.store import Change
from gateway.store.sqlite import SQLiteStore

from .store.test_contract import PAID_AT


class NoWait(SQLiteStore):
    """A store whose writes never wait for a lock SQLite reports busy."""

    busy_timeout_ms = 0


def payment(invoice: Invoice, current: Payment | None) -> Change:
    paid = Payment(tenant="acme", invoice_id=invoice.id, amount=Decimal("1.00"), paid_at=PAID_AT)
    return Change(marked_paid=False, upsert=paid)


async def pay(store: SQLiteStore, invoice: int, count: int) -> dict[str, int]:
    """`count` payments from 8 concurrent writers; how many were stored and refused busy."""
    tally = {"stored": 0, "busy": 0}
    numbers = iter(range(count))

    async def writer() -> None:
        for _ in numbers:
            try:
                await store.apply("acme", invoice, payment)
                tally["stored"] += 1
            except ServiceUnavailable:
                tally["busy"] += 1

    await asyncio.gather(*(writer() for _ in range(8)))
    return tally


def hold(invoice: Invoice, current: Payment | None) -> Change:
    """Say so from inside the write transaction, then never finish it."""
    print("holding", flush=True)
    threading.Event().wait()
    raise AssertionError("unreachable")


async def main(path: str, invoice: int, mode: str, count: int) -> None:
    store = NoWait(path, synchronous="NORMAL")
    await store.open()
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    if mode == "hold":
        await store.apply("acme", invoice, hold)
    print(json.dumps(await pay(store, invoice, count)), flush=True)
    await store.close()


if __name__ == "__main__":
    where, number, how, *rest = sys.argv[1:]
    asyncio.run(main(where, int(number), how, int(rest[0]) if rest else 0))
