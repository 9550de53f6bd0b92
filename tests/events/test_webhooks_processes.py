"""Webhook deliveries across gateway processes on one database: with every process
delivering, each event reaches the receiver once (the lease), signed."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from pytest_aiohttp import AiohttpServer
from standardwebhooks import Webhook as Verifier

from ..clients import CLIENTS
from ..http.processes import ADMIN, new_invoice, speak, started
from ..http.server import write_config

pytestmark = pytest.mark.stores  # SQLite (under --workers), then PostgreSQL

PAYMENTS = 30
SECRET = "whsec_" + base64.b64encode(b"p" * 32).decode()


async def test_every_process_delivers_and_each_event_arrives_once(
    engine: str, database: str, tmp_path: Path, aiohttp_server: AiohttpServer
) -> None:
    got: list[str] = []
    every = asyncio.Event()

    async def receive(request: web.Request) -> web.Response:
        Verifier(SECRET).verify(await request.read(), dict(request.headers))
        got.append(request.headers["webhook-id"])
        if len(set(got)) >= 2 * PAYMENTS:
            every.set()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hooks", receive)
    receiver = await aiohttp_server(app)
    config = write_config(tmp_path)
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    hook = {"name": "erp", "url": str(receiver.make_url("/hooks")), "secret": SECRET}
    raw["tenants"]["acme"]["webhooks"] = [hook]
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")

    # SQLite: one port served by two workers; PostgreSQL: two gateways, each on its own port.
    count, args = (1, ("--workers", "2")) if engine == "sqlite" else (2, ())
    async with started(tmp_path, config, database, count, *args) as servers:
        async with aiohttp.ClientSession() as session:
            invoices = [await new_invoice(session, servers[0], "1000.00") for _ in range(3)]
            names = sorted(CLIENTS)

            async def pay(index: int) -> None:
                client = speak(names[index % len(names)], session, servers[index % len(servers)])
                reply, number = await client.create(invoices[index % 3], "5.00")
                assert number is not None, reply.body

            await asyncio.gather(*(pay(index) for index in range(PAYMENTS)))
            await asyncio.wait_for(every.wait(), timeout=60)
            # The last answers may still be settling: read until the backlog is gone.
            async with asyncio.timeout(30):
                shown: dict[str, Any] = {"backlog": -1}
                while shown["backlog"] != 0:
                    url = f"{servers[-1].url}/gateway/v1/webhooks/acme"
                    async with session.get(url, headers=ADMIN) as response:
                        (shown,) = (await response.json())["webhooks"]
    assert len(got) == len(set(got)) == 2 * PAYMENTS  # none twice
    assert shown["state"] == "active"
