"""A payment split across invoices as the admin API and a one-invoice dialect see it, over
HTTP on each store: the admin API shows its group, version, customer and allocations with
an ETag and honours If-Match; Harvest lists and deletes the part on its invoice, which
shrinks the payment and moves its version on; Xero shows it as a batch payment. (The
split is made through the ledger itself, so these tests need no splitting dialect.)"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from dialects import Decoded
from dialects.model import Allocation, Payment
from gateway.ledger.contract import Principal
from gateway.serving.state import GATEWAY

from ..clients import CLIENTS, Reply
from ..conftest import Client
from ..support import ADMIN, new_invoice

pytestmark = pytest.mark.stores


async def _admin(client: Client, method: str, path: str, **extra: Any) -> tuple[int, Any, Any]:
    async with client.request(method, path, headers={**ADMIN, **extra}) as response:
        body = await response.json() if response.status != 204 else None
        return response.status, body, response.headers


async def _split(client: Client, lines: dict[int, str], customer: str | None) -> list[int]:
    """A payment on several invoices, made through the gateway's ledger: its parts' ids."""
    ledger = client.app[GATEWAY].ledger
    allocations = tuple(Allocation(i, Decimal(a)) for i, a in lines.items())
    fields = {"customer": customer}
    request = Decoded(Payment(**fields), frozenset(fields), allocations=allocations)
    made = await ledger.create_group(Principal("acme", "canonical", "test"), request)
    return [outcome.payment.id or 0 for outcome in made]


async def test_an_invoice_takes_and_shows_its_customer(client: Client) -> None:
    body = {"tenant": "acme", "number": "C-1", "currency": "EUR", "total": "10.00",
            "issued_on": "2026-01-01", "due_on": "2999-01-01", "customer": "58"}  # fmt: skip
    response = await client.post("/gateway/v1/invoices", json=body, headers=ADMIN)
    assert response.status == 201, await response.text()
    made = await response.json()
    status, shown, _ = await _admin(client, "GET", f"/gateway/v1/invoices/{made['id']}")
    assert (status, made["customer"], shown["customer"]) == (200, "58", "58")
    bad = await client.post(
        "/gateway/v1/invoices", json={**body, "number": "C-2", "customer": ""}, headers=ADMIN
    )
    assert bad.status == 422 and "customer" in (await bad.json())["error"]["fields"]


async def test_a_part_deleted_through_harvest_shrinks_the_payment(client: Client) -> None:
    one, two = [await new_invoice(client, total="100.00") for _ in range(2)]
    first, second = await _split(client, {one["id"]: "30.00", two["id"]: "45.00"}, "C7")

    status, shown, headers = await _admin(client, "GET", f"/gateway/v1/payments/{second}")
    assert (status, headers["ETag"]) == (200, '"0"')
    assert (shown["group_id"], shown["version"], shown["customer"], shown["voided"]) == (
        first, 0, "C7", False,
    )  # fmt: skip
    assert shown["allocations"] == [
        {"id": first, "invoice_id": one["id"], "amount": "30.00"},
        {"id": second, "invoice_id": two["id"], "amount": "45.00"},
    ]
    harvest = CLIENTS["harvest"](client)
    listed = await harvest.list(one["id"])
    assert [(view["id"], Decimal(str(view["amount"]))) for view in listed] == [(first, Decimal(30))]

    deleted = await harvest.delete(one["id"], first)
    assert deleted.status < 300, deleted.body

    status, shown, headers = await _admin(client, "GET", f"/gateway/v1/payments/{second}")
    assert (shown["group_id"], shown["version"], headers["ETag"]) == (first, 1, '"1"')
    assert shown["allocations"] == [{"id": second, "invoice_id": two["id"], "amount": "45.00"}]
    status, invoice, _ = await _admin(client, "GET", f"/gateway/v1/invoices/{one['id']}")
    assert (invoice["due_amount"], invoice["status"]) == ("100.00", "open")


async def test_admin_delete_honours_if_match(client: Client) -> None:
    one, two = [await new_invoice(client, total="100.00") for _ in range(2)]
    first, second = await _split(client, {one["id"]: "10.00", two["id"]: "20.00"}, None)
    path = f"/gateway/v1/payments/{first}"

    status, error, _ = await _admin(client, "DELETE", path, **{"If-Match": '"7"'})
    assert status == 412
    assert error["error"]["code"] == "precondition_failed"
    status, error, _ = await _admin(client, "DELETE", path, **{"If-Match": "garbage"})
    assert status == 412
    status, _, _ = await _admin(client, "GET", path)
    assert status == 200  # nothing was deleted

    status, _, _ = await _admin(client, "DELETE", path, **{"If-Match": '"0"'})
    assert status == 204
    assert (await _admin(client, "GET", path))[0] == 404
    _, shown, headers = await _admin(client, "GET", f"/gateway/v1/payments/{second}")
    assert (shown["version"], headers["ETag"]) == (1, '"1"')
    status, _, _ = await _admin(
        client, "DELETE", f"/gateway/v1/payments/{second}", **{"If-Match": '"0"'}
    )
    assert status == 412
    status, _, _ = await _admin(client, "DELETE", f"/gateway/v1/payments/{second}")
    assert status == 204
    for invoice in (one, two):
        _, found, _ = await _admin(client, "GET", f"/gateway/v1/invoices/{invoice['id']}")
        assert found["due_amount"] == "100.00"


async def test_events_carry_the_group_version_and_customer(client: Client) -> None:
    one, two = [await new_invoice(client, total="100.00") for _ in range(2)]
    _, feed, _ = await _admin(client, "GET", "/gateway/v1/events?tenant=acme")
    first, second = await _split(client, {one["id"]: "10.00", two["id"]: "20.00"}, "C9")
    _, feed, _ = await _admin(client, "GET", f"/gateway/v1/events?tenant=acme&after={feed['next']}")
    made = [e["data"]["payment"] for e in feed["events"] if e["type"] == "payment.created"]
    assert [(p["id"], p["group_id"], p["version"], p["customer"], p["voided"]) for p in made] == [
        (first, first, 0, "C9", False),
        (second, first, 0, "C9", False),
    ]


async def test_xero_shows_a_split_payment_as_a_batch_payment(client: Client) -> None:
    """Xero reads each allocation of a split payment as a payment of a batch payment
    (its id the whole payment's, its total the allocations' sum); a payment on one
    invoice belongs to no batch."""
    one, two = [await new_invoice(client, total="100.00") for _ in range(2)]
    first, second = await _split(client, {one["id"]: "30.00", two["id"]: "45.00"}, None)
    xero = CLIENTS["xero"](client)
    batch = xero.support.wire_id(first)

    async def shown(payment: int, media: str = "application/json") -> Reply:
        path = f"/api.xro/2.0/Payments/{xero.support.wire_id(payment)}"
        reply = await xero.call("GET", path, headers={"Accept": media})
        assert reply.status == 200, reply.body
        return reply

    for part in (first, second):
        [payment] = (await shown(part)).json()["Payments"]
        assert (payment["BatchPaymentID"], payment["BatchPayment"]) == (
            batch, {"BatchPaymentID": batch, "Type": "RECBATCH", "TotalAmount": 75.0},
        )  # fmt: skip
    xml = (await shown(second, "application/xml")).xml()
    assert xml.findtext(".//Payment/BatchPayment/TotalAmount") == "75.00"

    _, alone = await xero.create(one["id"], "5.00")
    assert alone is not None
    assert "BatchPaymentID" not in (await shown(alone)).json()["Payments"][0]

    # One allocation left: no longer a batch of several.
    assert (await CLIENTS["harvest"](client).delete(one["id"], first)).status < 300
    assert "BatchPaymentID" not in (await shown(second)).json()["Payments"][0]
