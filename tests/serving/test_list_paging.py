"""List paging where the vendor pages (FastBill `limit`/`offset`); whole lists elsewhere."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from dialects import testing
from dialects.model import Invoice, Payment
from gateway.serving.state import GATEWAY
from gateway.store import Change

from ..clients import CLIENTS
from ..conftest import Client
from ..http.wire import DIALECTS, call, error_messages, make_invoice, pay, payment_id


async def _invoice_with_payments(client: Client, count: int) -> tuple[int, list[int]]:
    invoice = await make_invoice(client)
    ids = []
    for _ in range(count):
        reply = await pay(client, "fastbill", invoice, "10")
        assert reply.status == 201, reply.body
        ids.append(payment_id("fastbill", reply))
    return invoice, ids


async def _listed(client: Client, dialect: str, path: str) -> list[int]:
    reply = await call(client, dialect, "GET", path)
    assert reply.status == 200, reply.body
    return [int(item.findtext("id") or "0") for item in reply.xml()]


@pytest.mark.parametrize(
    ("query", "window"),
    [
        ("", slice(None)),
        ("&limit=2", slice(0, 2)),
        ("&offset=3", slice(3, None)),
        ("&limit=2&offset=1", slice(1, 3)),
        ("&offset=1&limit=99", slice(1, None)),
        ("&offset=5", slice(5, None)),
        ("&offset=50&limit=2", slice(50, 52)),
        ("&offset=999999999999999999&limit=999999999999999999", slice(10**18 - 1, None)),
    ],
)
@pytest.mark.stores  # the store pages: SQL LIMIT/OFFSET on each engine
async def test_fastbill_lists_page_by_limit_and_offset(
    client: Client, query: str, window: slice
) -> None:
    invoice, ids = await _invoice_with_payments(client, 5)

    listed = await _listed(client, "fastbill", f"/api/invoice-payments?invoice_id={invoice}{query}")

    assert listed == ids[window]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=0", "Limit must be a positive whole number"),
        ("limit=x", "Limit must be a positive whole number"),
        ("limit=1.5", "Limit must be a positive whole number"),
        ("limit=", "Limit must be a positive whole number"),
        ("offset=-1", "Offset must be zero or a positive whole number"),
        ("offset=2e3", "Offset must be zero or a positive whole number"),
    ],
)
async def test_fastbill_refuses_a_page_it_cannot_read(
    client: Client, query: str, message: str
) -> None:
    invoice, _ = await _invoice_with_payments(client, 1)

    reply = await call(
        client, "fastbill", "GET", f"/api/invoice-payments?invoice_id={invoice}&{query}"
    )

    assert reply.status == 422, reply.body
    assert error_messages(reply) == [message]


async def test_a_dialect_without_paging_lists_everything_whatever_the_query(
    client: Client,
) -> None:
    invoice, ids = await _invoice_with_payments(client, 3)

    listed = await _listed(client, "harvest", f"/invoices/{invoice}/payments?limit=1&offset=1")

    assert listed == ids


async def test_a_long_list_comes_back_whole_in_every_dialect(client: Client) -> None:
    """No dialect truncates a list its clients expect whole: 2,500 payments, all listed."""
    invoice = await make_invoice(client, total="100000.00")
    store = client.app[GATEWAY].store

    def one(found: Invoice, _: Payment | None) -> Change:
        paid = datetime(2026, 11, 20, tzinfo=UTC)
        made = Payment(tenant="acme", invoice_id=found.id, amount=Decimal("1.00"), paid_at=paid)
        return Change(marked_paid=False, upsert=made)

    for _ in range(25):  # concurrent writes commit in groups: quick to fill
        await asyncio.gather(*(store.apply("acme", invoice, one) for _ in range(100)))

    for dialect in DIALECTS:
        views = await CLIENTS[dialect](client).list(invoice)
        whole = testing.support(dialect).page_limit or 2500  # a protocol that pages: a page
        assert len(views) == whole, dialect
        assert len({view["id"] for view in views}) == whole, dialect
