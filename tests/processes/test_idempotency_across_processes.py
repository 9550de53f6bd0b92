"""One Idempotency-Key across gateway processes on one database: one effect, one answer."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from ..clients import Reply
from ..http.processes import invoice_state, new_invoice, speak, started
from ..http.server import write_config
from ..http.wire import payment_request

pytestmark = pytest.mark.stores  # SQLite (under --workers), then PostgreSQL


async def test_twenty_parallel_requests_with_one_key_across_processes_record_one_payment(
    engine: str, database: str, tmp_path: Path
) -> None:
    # SQLite: one port served by two workers; PostgreSQL: two gateways, each on its own port.
    count, args = (1, ("--workers", "2")) if engine == "sqlite" else (2, ())
    async with started(tmp_path, write_config(tmp_path), database, count, *args) as servers:
        async with aiohttp.ClientSession() as session:
            invoice = await new_invoice(session, servers[0], "100.00")
            path, body, headers = payment_request("invoiless", invoice, "5.00")
            keyed = {**headers, "Idempotency-Key": "across-processes"}

            async def send(index: int) -> Reply:
                client = speak("invoiless", session, servers[index % len(servers)])
                return await client.call("POST", path, body, keyed)

            replies = await asyncio.gather(*(send(index) for index in range(20)))
            state = await invoice_state(session, servers[-1], invoice)
    created = [r for r in replies if r.status == 201]
    assert all(r.status in (201, 409) for r in replies), [r.status for r in replies]
    assert created and {r.body for r in created} == {created[0].body}
    assert sum("Idempotent-Replayed" not in r.headers for r in created) == 1
    assert (state["due_amount"], len(state["payments"])) == ("95.00", 1)
