"""One hot invoice: 64 connections pay it at once; it is never overpaid, no write
deadlocks or fails, and every payment not taken is refused as an overpayment."""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal

import pytest

from ..clients import CLIENTS
from ..support import invoice_state, new_invoice

pytestmark = pytest.mark.stores

CONNECTIONS = 64


async def test_64_connections_paying_one_invoice_never_overpay_it(client: object) -> None:
    invoice = await new_invoice(client, total="100.00")  # type: ignore[arg-type]
    payer = CLIENTS["invoiless"](client)
    # 64 payments of 3.00 on 100.00: 33 fit (99.00), the other 31 would overpay.
    sent = [payer.create(invoice["id"], "3.00") for _ in range(CONNECTIONS)]
    replies = await asyncio.wait_for(asyncio.gather(*sent), 120)
    statuses = Counter(reply.status for reply, _ in replies)
    assert statuses == {201: 33, 422: 31}, statuses
    refused = [reply for reply, _ in replies if reply.status == 422]
    assert all(b"exceeds the amount due" in reply.body for reply in refused)
    state = await invoice_state(client, invoice["id"])  # type: ignore[arg-type]
    assert Decimal(state["due_amount"]) == Decimal("1.00")
    assert len(state["payments"]) == 33
