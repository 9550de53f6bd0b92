"""Batches crossing the same invoices through several gateway processes on one database:
each batch locks its invoices in one order, so none deadlocks and none overpays."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import cast

import aiohttp
import pytest

from ..conftest import Client
from ..http.processes import Remote, invoice_state, new_invoice, started
from ..http.server import write_config
from ..ledger.test_batches import send_batch

pytestmark = pytest.mark.stores


@pytest.mark.parametrize("args", [(), ("--workers", "2")], ids=["two-gateways", "two-workers"])
async def test_crossing_batches_through_several_processes_are_whole_or_refused(
    tmp_path: Path, database: str, args: tuple[str, ...]
) -> None:
    count = 2 if not args else 1
    async with (
        started(tmp_path, write_config(tmp_path), database, count, *args) as servers,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session,
    ):
        a = await new_invoice(session, servers[0], "100.00")
        b = await new_invoice(session, servers[0], "100.00")
        remotes = [cast(Client, Remote(session, server.url)) for server in servers]
        crossing = ([(a, "3.00"), (b, "3.00")], [(b, "3.00"), (a, "3.00")])
        replies = await asyncio.gather(
            *(send_batch(remotes[n % count], "xero", crossing[n % 2]) for n in range(40))
        )
        states = [await invoice_state(session, servers[0], invoice) for invoice in (a, b)]
    assert sorted({reply.status for reply in replies}) == [200, 400]
    stored = sum(1 for reply in replies if reply.status == 200)
    assert stored == 33  # 33 x 3.00 fit in 100.00 on each invoice; the others are refused
    for state in states:
        assert Decimal(state["due_amount"]) == Decimal("1.00")
        assert len(state["payments"]) == stored
