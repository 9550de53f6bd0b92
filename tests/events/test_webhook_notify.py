"""PostgreSQL: a gateway's committed events wake the delivery loops of every gateway on
the database (LISTEN/NOTIFY), and keep doing so after the listening connection is cut.

Two gateways share one database: one takes the creates and delivers nothing, the other
delivers with its poll set to an hour, so only a notice can wake it in time.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from pytest_aiohttp import AiohttpServer

from gateway.serving.app import create_app
from gateway.store.postgres import LISTENER

from ..conftest import AiohttpClient
from ..support import make_config, tenant_config
from .test_webhook_wakeups import passes, until
from .test_webhooks import SECRET, Receiver, pay


@pytest.fixture
def engine() -> str:
    return "postgresql"  # LISTEN/NOTIFY is PostgreSQL's


async def listeners(database: str) -> set[int]:
    conn = await asyncpg.connect(database)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1", LISTENER
        )
        return {row[0] for row in rows}
    finally:
        await conn.close()


async def cut(database: str, pids: set[int]) -> None:
    conn = await asyncpg.connect(database)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", list(pids)
        )
    finally:
        await conn.close()


async def test_a_create_on_one_gateway_wakes_the_other_ones_loop(
    database: str, aiohttp_client: AiohttpClient, aiohttp_server: AiohttpServer
) -> None:
    name = "notified"
    receiver = Receiver([SECRET])
    receiver.url = str((await aiohttp_server(receiver.app())).make_url(""))
    spec: dict[str, Any] = {"name": name, "url": receiver.url + "/hooks", "secret": SECRET}
    tenants = {"acme": tenant_config("acme") | {"webhooks": [spec]}}
    config = make_config(database, tenants=tenants, events={"poll_seconds": 3600})
    seen = passes(name)
    writer = await aiohttp_client(create_app(config, deliver=False))
    await aiohttp_client(create_app(config))  # the one that delivers
    await until(lambda: passes(name) > seen, "the delivering loop's first pass")

    await pay(writer)
    await until(lambda: len(receiver.got) == 2, "the other gateway's create delivered")

    before = await listeners(database)
    assert len(before) == 2  # one per gateway
    await cut(database, before)
    async with asyncio.timeout(20):  # both listen again, on new connections
        while len((await listeners(database)) - before) < 2:
            await asyncio.sleep(0.05)
    await pay(writer)
    await until(lambda: len(receiver.got) == 4, "delivered after the listeners reconnected")
