"""Relay across gateway processes on one database: with every process forwarding, each
payment reaches the backend once (the lease), the backend taking no idempotency key."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

import dialects

from ..clients import CLIENTS
from ..http.processes import ADMIN, speak, started
from ..http.server import Server, write_config
from ..proxy.harness import LedgerBackend, upstream
from ..registry import names
from .test_relay import keyless

pytestmark = pytest.mark.stores  # SQLite (under --workers), then PostgreSQL

PAYMENTS = 24
DIALECT = names(keyless)[0]


async def test_every_process_relays_and_each_payment_arrives_once(
    engine: str, database: str, tmp_path: Path, backend_process: Server
) -> None:
    config = write_config(tmp_path)
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    relay = upstream(DIALECT, backend_process.url, retry_schedule=[0.5] * 10)
    raw["tenants"]["acme"]["relay"] = relay
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")

    # SQLite: one port served by two workers; PostgreSQL: two gateways, each on its own port.
    count, args = (1, ("--workers", "2")) if engine == "sqlite" else (2, ())
    async with aiohttp.ClientSession() as session:
        backend = LedgerBackend(backend_process.url, session)
        number = await backend.new_invoice("100000.00")
        async with started(tmp_path, config, database, count, *args) as servers:
            invoice = await relay_invoice(session, servers[0], "R-1", number)
            callers = sorted(CLIENTS)

            async def pay(index: int) -> None:
                server = servers[index % len(servers)]
                client = speak(callers[index % len(callers)], session, server)
                reply, made = await client.create(invoice, f"{index + 1}.00")
                assert made is not None, reply.body

            await asyncio.gather(*(pay(index) for index in range(PAYMENTS)))
            pending: list[dict[str, Any]] = [{}]
            async with asyncio.timeout(60):
                while pending:
                    await asyncio.sleep(0.2)
                    relay_url = f"{servers[-1].url}/gateway/v1/relay/acme?state=pending"
                    async with session.get(relay_url, headers=ADMIN) as response:
                        pending = (await response.json())["relay"]
                    if not pending:  # fanned out yet? every payment's row is there
                        done_url = f"{servers[-1].url}/gateway/v1/relay/acme?state=delivered"
                        async with session.get(done_url, headers=ADMIN) as response:
                            if len((await response.json())["relay"]) < PAYMENTS:
                                pending = [{}]
        at_backend = await backend.payments(number)
    amounts = sorted(int(float(payment["amount"])) for payment in at_backend)
    assert amounts == list(range(1, PAYMENTS + 1))  # each once, none twice


async def relay_invoice(
    session: aiohttp.ClientSession, server: Server, name: str, backend_number: int
) -> int:
    """A ledger invoice of acme (1000.00) relayed to the backend's invoice `backend_number`."""
    body = {
        "tenant": "acme", "number": name, "currency": "EUR", "total": "1000.00",
        "issued_on": "2026-01-01", "due_on": "2999-12-31",
        "backend_invoice_id": str(dialects.get(DIALECT).wire_id(backend_number)),
    }  # fmt: skip
    url = f"{server.url}/gateway/v1/invoices"
    async with session.post(url, json=body, headers=ADMIN) as response:
        assert response.status == 201, await response.text()
        invoice: int = (await response.json())["id"]
    return invoice
