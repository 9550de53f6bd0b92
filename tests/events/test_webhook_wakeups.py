"""Delivery loops wake on their own process's commits, not on a poll of the store.

With webhooks configured and no traffic, the delivery passes find nothing to do and
write nothing: they go on while the test holds the database's writers out, and the
database's own count of writes (SQLite's data_version, PostgreSQL's next transaction
id) does not move. With the poll set to an hour, a create is still delivered at once,
and a retry when its schedule says: what wakes the loop is the commit, and the due time
the store keeps.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest
from prometheus_client import REGISTRY
from pytest_aiohttp import AiohttpServer

from gateway.serving.app import create_app

from ..conftest import AiohttpClient, Client
from ..support import ADMIN, make_config, tenant_config
from .test_webhooks import SECRET, Receiver, pay

pytestmark = pytest.mark.stores  # SQLite, then PostgreSQL

# Tables a delivery pass would write: held against writers while the passes go on.
TABLES = "webhook_subscriptions, webhook_deliveries, events, event_sequences"

Start = Callable[..., Awaitable[tuple[Client, Receiver]]]


@pytest.fixture
def start(database: str, aiohttp_client: AiohttpClient, aiohttp_server: AiohttpServer) -> Start:
    """A gateway delivering in the background to one receiver (webhook `name` of acme).

    The database is set up first, so that it is dropped only after the gateway, whose
    loops still use it, has closed."""

    async def make(name: str, poll: float, **hook: Any) -> tuple[Client, Receiver]:
        receiver = Receiver([SECRET])
        server = await aiohttp_server(receiver.app())
        receiver.url = str(server.make_url(""))
        spec = {"name": name, "url": receiver.url + "/hooks", "secret": SECRET} | hook
        tenants = {"acme": tenant_config("acme") | {"webhooks": [spec]}}
        config = make_config(database, tenants=tenants, events={"poll_seconds": poll})
        client = await aiohttp_client(create_app(config))
        return client, receiver

    return make


def passes(name: str, found: str = "idle") -> float:
    labels = {"tenant": "acme", "webhook": name, "found": found}
    return REGISTRY.get_sample_value("gateway_webhook_passes_total", labels) or 0.0


async def until(condition: Callable[[], bool], what: str, timeout: float = 20) -> None:
    """Poll `condition` (bounded): the loops run in the background of this event loop."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)
    assert condition(), what


async def backlog(client: Client) -> int:
    async with client.get("/gateway/v1/webhooks/acme", headers=ADMIN) as response:
        (shown,) = (await response.json())["webhooks"]
    return int(shown["backlog"])


class Writes:
    """The database's own record of writes, and a hold that keeps every writer out of the
    delivery tables (readers go on)."""

    def __init__(self, database: str) -> None:
        self.database = database

    async def count(self) -> int:
        """SQLite: `data_version`, which moves when another connection commits a change;
        PostgreSQL: the next transaction id, which any write (a row lock too) takes."""
        if self.database.startswith("sqlite"):
            return self._sqlite.execute("PRAGMA data_version").fetchone()[0]  # type: ignore[no-any-return]
        return int(await self._pg.fetchval("SELECT pg_snapshot_xmax(pg_current_snapshot())::text"))

    @asynccontextmanager
    async def opened(self) -> AsyncIterator[Writes]:
        if self.database.startswith("sqlite"):
            self._sqlite = sqlite3.connect(self.database.removeprefix("sqlite:///"))
            self._sqlite.isolation_level = None
            try:
                yield self
            finally:
                self._sqlite.close()
            return
        self._pg = await asyncpg.connect(self.database)
        try:
            yield self
        finally:
            await self._pg.close()

    @asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """SQLite: the database's write lock; PostgreSQL: the tables locked EXCLUSIVE."""
        if self.database.startswith("sqlite"):
            self._sqlite.execute("BEGIN IMMEDIATE")
            try:
                yield
            finally:
                self._sqlite.execute("ROLLBACK")
            return
        async with self._pg.transaction():
            await self._pg.execute(f"LOCK TABLE {TABLES} IN EXCLUSIVE MODE")
            yield


async def test_idle_delivery_passes_write_nothing(start: Start, database: str) -> None:
    name = "idle"
    client, receiver = await start(name, poll=0.02)
    await pay(client)  # a delivery made and settled: the tables hold rows an idle pass sees
    await until(lambda: len(receiver.got) == 2, "payment.created and invoice.updated delivered")
    async with asyncio.timeout(20):  # their outcomes recorded: nothing left to settle
        while (await backlog(client)) != 0:
            await asyncio.sleep(0.01)
    async with Writes(database).opened() as writes:
        before = await writes.count()
        async with writes.held():
            seen = passes(name)
            await until(lambda: passes(name) >= seen + 5, "idle passes with writers held out")
        after = await writes.count()
    assert after == before
    assert len(receiver.got) == 2


async def test_a_create_wakes_its_loop_without_waiting_for_the_poll(start: Start) -> None:
    name = "prompt"
    seen = passes(name)
    client, receiver = await start(name, poll=3600)
    await until(lambda: passes(name) > seen, "the loop's first pass, before its hour's wait")
    await pay(client)
    await until(lambda: len(receiver.got) == 2, "the create's events delivered")
    assert {got["headers"]["webhook-event-type"] for got in receiver.got} == {
        "payment.created",
        "invoice.updated",
    }


async def test_a_retry_wakes_its_loop_when_due(start: Start) -> None:
    name = "retry"
    client, receiver = await start(
        name, poll=3600, retry_schedule=[0.2], events=["payment.created"]
    )
    receiver.answers = [503]
    await pay(client)
    await until(lambda: len(receiver.got) == 2, "the first attempt, then the retry when due")
    ids = [got["headers"]["webhook-id"] for got in receiver.got]
    assert ids[0] == ids[1]
