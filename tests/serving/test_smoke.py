"""End-to-end smoke: every dialect records and reads on one invoice."""

from __future__ import annotations

from decimal import Decimal

import pytest

from dialects import testing

from ..clients import CLIENTS
from ..conftest import Client
from ..support import invoice_state, new_invoice

pytestmark = pytest.mark.stores


@pytest.mark.parametrize("writer", sorted(CLIENTS))
@pytest.mark.parametrize("reader", sorted(CLIENTS))
async def test_payment_recorded_in_one_dialect_reads_in_another(
    client: Client, writer: str, reader: str
) -> None:
    invoice = await new_invoice(client)
    reply, payment_id = await CLIENTS[writer](client).create(invoice["id"], "12.34", notes="grid")
    assert reply.status == testing.support(writer).create_status, reply.body
    assert payment_id is not None
    listed = await CLIENTS[reader](client).list(invoice["id"])
    assert listed == [
        {"id": payment_id, "amount": Decimal("12.34"), "notes": "grid", "paid_on": "2026-11-20"}
    ]
    got = await CLIENTS[reader](client).get(invoice["id"], payment_id)
    assert got == listed[0]
    state = await invoice_state(client, invoice["id"])
    assert state["due_amount"] == "987.66"
    assert state["status"] == "partial"
