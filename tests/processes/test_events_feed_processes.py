"""The change feed across gateway processes on one database: a reader that keeps its cursor
while writers in every process commit concurrently sees every event once, in order."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ..clients import CLIENTS
from ..http.processes import ADMIN, new_invoice, speak, started
from ..http.server import Server, write_config

pytestmark = pytest.mark.stores  # SQLite (under --workers), then PostgreSQL

PAYMENTS = 60
INVOICES = 4


async def page(session: aiohttp.ClientSession, server: Server, after: int) -> dict[str, Any]:
    query = {"tenant": "acme", "after": str(after), "limit": "7"}
    async with session.get(f"{server.url}/gateway/v1/events", params=query, headers=ADMIN) as r:
        assert r.status == 200, await r.text()
        found: dict[str, Any] = await r.json()
    return found


async def test_a_cursor_read_during_concurrent_writes_in_every_process_misses_nothing(
    engine: str, database: str, tmp_path: Path
) -> None:
    # SQLite: one port served by two workers; PostgreSQL: two gateways, each on its own port.
    count, args = (1, ("--workers", "2")) if engine == "sqlite" else (2, ())
    async with started(tmp_path, write_config(tmp_path), database, count, *args) as servers:
        async with aiohttp.ClientSession() as session:
            invoices = [await new_invoice(session, servers[0], "1000.00") for _ in range(INVOICES)]
            names = sorted(CLIENTS)
            made: list[int] = []

            async def pay(index: int) -> None:
                server = servers[index % len(servers)]
                client = speak(names[index % len(names)], session, server)
                reply, number = await client.create(invoices[index % INVOICES], "5.00")
                assert number is not None, reply.body
                made.append(number)

            writing = asyncio.gather(*(pay(index) for index in range(PAYMENTS)))
            seen: list[dict[str, Any]] = []
            cursor, reads = 0, 0
            while not writing.done() or len(seen) < 2 * PAYMENTS:
                # Each page from the processes in turn, as consumers behind a balancer read.
                found = await page(session, servers[reads % len(servers)], cursor)
                reads += 1
                seen += found["events"]
                cursor = found["next"]
                if writing.done() and not found["events"]:
                    break
            await writing
    # Each create made two events; the reader saw each once, in sequence order, none
    # skipped (a sequence passed before it committed would be missing here).
    assert [event["sequence"] for event in seen] == list(range(1, 2 * PAYMENTS + 1))
    created = [e["data"]["payment"]["id"] for e in seen if e["type"] == "payment.created"]
    assert sorted(created) == sorted(made)
    assert len({event["id"] for event in seen}) == 2 * PAYMENTS
