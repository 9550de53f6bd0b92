"""Batches of payments in one body: all or nothing when summarised, item by item otherwise,
and one Idempotency-Key covering the whole batch, on both stores over HTTP."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import pytest
from lxml import etree

from dialects import testing
from dialects.unit import Op

from ..clients import CLIENTS, Reply
from ..conftest import Client
from ..dialects.test_xero_over_http import by_id, put_json, uuid_of
from ..registry import has, names
from ..support import invoice_state, new_invoice

pytestmark = pytest.mark.stores
BATCHERS = names(has(Op.CREATE_MANY))
KEY = "Idempotency-Key"
ITEM_BY_ITEM = "?summarizeErrors=false"
OVERPAID = "Payment amount exceeds the amount outstanding on this document"


async def send_batch(
    client: Client,
    dialect: str,
    items: list[tuple[int, str]],
    *,
    query: str = "",
    headers: dict[str, str] | None = None,
) -> Reply:
    """A batch in `dialect`'s own form: (invoice, amount) per item, in order."""
    support = testing.support(dialect)
    requests = [support.create("acme", invoice, amount) for invoice, amount in items]
    body = support.batch([request.body or b"" for request in requests])
    first = requests[0]
    caller = CLIENTS[dialect](client)
    return await caller.call("PUT", first.path + query, body, {**first.headers, **(headers or {})})


async def settled(client: Client, *invoices: dict[str, Any]) -> list[int]:
    """How many live payments each invoice has, as the admin API shows it."""
    return [len((await invoice_state(client, i["id"]))["payments"]) for i in invoices]


@pytest.mark.parametrize("dialect", BATCHERS)
@pytest.mark.parametrize(
    "amounts",
    [
        pytest.param([("a", "4.00"), ("a", "7.00"), ("b", "1.00")], id="second-overpays"),
        pytest.param([("a", "6.00"), ("b", "1.00"), ("a", "6.00")], id="two-together-overpay"),
        pytest.param([("b", "1.00"), ("a", "2.00"), ("missing", "1.00")], id="last-no-invoice"),
    ],
)
async def test_a_refused_summarised_batch_stores_none_of_its_items(
    client: Client, dialect: str, amounts: list[tuple[str, str]]
) -> None:
    a, b = await new_invoice(client, total="10.00"), await new_invoice(client, total="10.00")
    ids = {"a": a["id"], "b": b["id"], "missing": 10**9}
    reply = await send_batch(client, dialect, [(ids[name], amount) for name, amount in amounts])
    testing.support(dialect).error(reply.answer(), 400, "validation")
    assert await settled(client, a, b) == [0, 0]
    # The same batch without its refused part is stored whole.
    fitting = [(ids[name], "1.00") for name, _ in amounts if name != "missing"]
    assert (await send_batch(client, dialect, fitting)).status == 200
    assert sum(await settled(client, a, b)) == len(fitting)


async def test_item_by_item_each_refusal_echoes_the_item_it_answers(client: Client) -> None:
    invoice = await new_invoice(client, total="10.00")
    reply = await put_json(
        client,
        by_id(invoice["id"], "6.00", Reference="first"),
        by_id(invoice["id"], "6.00", Reference="second"),
        {"Invoice": {"InvoiceNumber": "NO-SUCH"}, "Amount": "1.00", "Reference": "third"},
        query=ITEM_BY_ITEM,
    )
    assert reply.status == 200, reply.body
    made, overpaid, unknown = reply.json()["Payments"]
    assert (made["StatusAttributeString"], made["Reference"]) == ("OK", "first")
    assert overpaid["StatusAttributeString"] == "ERROR"
    assert overpaid["ValidationErrors"] == [{"Message": OVERPAID}]
    assert (overpaid["Reference"], overpaid["Amount"]) == ("second", "6.00")  # as sent
    assert overpaid["Invoice"] == {"InvoiceID": uuid_of(invoice["id"])}
    assert "PaymentID" not in overpaid and overpaid["HasValidationErrors"] is True
    assert (unknown["Reference"], unknown["Invoice"]) == ("third", {"InvoiceNumber": "NO-SUCH"})
    assert unknown["ValidationErrors"][0]["Message"].startswith("Invoice.InvoiceID could")
    assert await settled(client, invoice) == [1]


async def test_item_by_item_in_xml_each_refused_element_carries_its_fields(
    client: Client,
) -> None:
    invoice = await new_invoice(client, total="10.00")
    reply = await send_batch(client, "xero", [(invoice["id"], "6.00")] * 2, query=ITEM_BY_ITEM)
    assert reply.status == 200, reply.body
    made, refused = etree.fromstring(reply.body).iterfind("Payments/Payment")
    assert (made.get("status"), refused.get("status")) == ("OK", "ERROR")
    assert refused.findtext("Amount") == "6.00"
    assert refused.findtext("Invoice/InvoiceID") == uuid_of(invoice["id"])
    assert refused.findtext("ValidationErrors/ValidationError/Message") == OVERPAID


@pytest.mark.parametrize("dialect", BATCHERS)
async def test_an_idempotency_key_covers_a_whole_batch(client: Client, dialect: str) -> None:
    a, b = await new_invoice(client, total="10.00"), await new_invoice(client, total="10.00")
    items = [(a["id"], "4.00"), (b["id"], "5.00"), (a["id"], "6.00")]
    first = await send_batch(client, dialect, items, headers={KEY: "whole-batch"})
    again = await send_batch(client, dialect, items, headers={KEY: "whole-batch"})
    assert first.status == 200, first.body
    assert len(testing.support(dialect).views(first.body)) == 3
    assert (again.status, again.body, again.headers["Idempotent-Replayed"]) == (
        200,
        first.body,
        "true",
    )
    assert "Idempotent-Replayed" not in first.headers
    assert await settled(client, a, b) == [2, 1]
    other = await send_batch(client, dialect, items[:2], headers={KEY: "whole-batch"})
    testing.support(dialect).error(other.answer(), 422, "key_reused")


@pytest.mark.parametrize("dialect", BATCHERS)
async def test_a_refused_keyed_batch_stores_nothing_and_frees_its_key(
    client: Client, dialect: str
) -> None:
    invoice = await new_invoice(client, total="10.00")
    items = [(invoice["id"], "4.00"), (invoice["id"], "7.00")]
    refused = await send_batch(client, dialect, items, headers={KEY: "refused"})
    testing.support(dialect).error(refused.answer(), 400, "validation")
    assert "Idempotent-Replayed" not in refused.headers
    assert await settled(client, invoice) == [0]
    retried = await send_batch(client, dialect, items, headers={KEY: "refused"})
    assert (retried.status, "Idempotent-Replayed" in retried.headers) == (400, False)
    assert await settled(client, invoice) == [0]


async def test_a_keyed_item_by_item_batch_is_replayed_with_its_refusals(client: Client) -> None:
    invoice = await new_invoice(client, total="10.00")
    items = [(invoice["id"], "6.00"), (invoice["id"], "6.00"), (10**9, "1.00")]
    headers = {KEY: "item-by-item"}
    first = await send_batch(client, "xero", items, query=ITEM_BY_ITEM, headers=headers)
    again = await send_batch(client, "xero", items, query=ITEM_BY_ITEM, headers=headers)
    assert first.status == 200, first.body
    statuses = [e.get("status") for e in etree.fromstring(first.body).iterfind("Payments/Payment")]
    assert statuses == ["OK", "ERROR", "ERROR"]
    assert (again.body, again.headers["Idempotent-Replayed"]) == (first.body, "true")
    assert await settled(client, invoice) == [1]


async def test_batches_crossing_the_same_invoices_in_opposite_orders_all_finish(
    client: Client,
) -> None:
    """Each batch locks its invoices in one order, so crossing batches never deadlock;
    every batch is stored whole or refused whole, and no invoice is overpaid."""
    a, b = await new_invoice(client, total="100.00"), await new_invoice(client, total="100.00")
    forward = [(a["id"], "3.00"), (b["id"], "3.00")]
    backward = [(b["id"], "3.00"), (a["id"], "3.00")]
    replies = await asyncio.gather(
        *(send_batch(client, "xero", forward if n % 2 else backward) for n in range(40))
    )
    stored = sum(1 for reply in replies if reply.status == 200)
    assert {reply.status for reply in replies} <= {200, 400}
    assert stored == 33  # 33 x 3.00 fits in 100.00; the 34th would overpay both
    for invoice in (a, b):
        state = await invoice_state(client, invoice["id"])
        assert Decimal(state["due_amount"]) == Decimal("100.00") - 3 * stored


@pytest.mark.parametrize(
    ("second", "message"),
    [
        pytest.param({"Amount": "7.00"}, OVERPAID, id="overpays"),
        pytest.param({"Amount": "4.001"}, "Amount must have at most 2", id="amount-too-precise"),
        pytest.param(
            {"Invoice": {"InvoiceNumber": "NO-SUCH"}}, "Invoice.InvoiceID could", id="no-invoice"
        ),
        pytest.param(
            {"Invoice": {"InvoiceID": uuid_of(10**9)}}, "Invoice.InvoiceID could", id="no-such-id"
        ),
        pytest.param({"Amount": None}, "Amount can't be blank", id="no-amount"),
    ],
)
async def test_a_refused_summarised_batch_echoes_the_item_refused(
    client: Client, second: dict[str, Any], message: str
) -> None:
    invoice = await new_invoice(client, total="10.00")
    refused = {**by_id(invoice["id"], "4.00", Reference="the second"), **second}
    refused = {name: value for name, value in refused.items() if value is not None}
    reply = await put_json(client, by_id(invoice["id"], "4.00", Reference="the first"), refused)
    assert reply.status == 400, reply.body
    [element] = reply.json()["Elements"]
    assert element["Reference"] == "the second"
    assert element["ValidationErrors"][0]["Message"].startswith(message)
    assert await settled(client, invoice) == [0]


async def test_a_refused_summarised_batch_in_xml_echoes_the_item_refused(client: Client) -> None:
    invoice = await new_invoice(client, total="10.00")
    reply = await send_batch(client, "xero", [(invoice["id"], "4.00"), (invoice["id"], "7.00")])
    assert reply.status == 400, reply.body
    [element] = etree.fromstring(reply.body).iterfind("Elements/DataContractBase")
    assert element.findtext("ValidationErrors/ValidationError/Message") == OVERPAID
    assert (element.findtext("Amount"), element.findtext("Invoice/InvoiceID")) == (
        "7.00",
        uuid_of(invoice["id"]),
    )


@pytest.mark.parametrize("amount", ["4.001", "lots", "-1.00"])
async def test_item_by_item_an_item_that_cannot_be_read_is_refused_alone(
    client: Client, amount: str
) -> None:
    invoice = await new_invoice(client, total="10.00")
    reply = await put_json(
        client,
        by_id(invoice["id"], "1.00", Reference="before"),
        by_id(invoice["id"], amount, Reference="unreadable"),
        by_id(invoice["id"], "2.00", Reference="after"),
        query=ITEM_BY_ITEM,
    )
    assert reply.status == 200, reply.body
    before, unreadable, after = reply.json()["Payments"]
    assert [before["StatusAttributeString"], after["StatusAttributeString"]] == ["OK", "OK"]
    assert unreadable["StatusAttributeString"] == "ERROR"
    assert (unreadable["Reference"], unreadable["Amount"]) == ("unreadable", amount)
    assert unreadable["ValidationErrors"][0]["Message"].startswith("Amount ")
    assert await settled(client, invoice) == [2]


@pytest.mark.parametrize("query", ["", ITEM_BY_ITEM])
@pytest.mark.parametrize("accept", ["application/xml", "application/json"])
async def test_an_echo_of_hostile_input_is_well_formed_and_holds_only_payment_fields(
    client: Client, query: str, accept: str
) -> None:
    invoice = await new_invoice(client, total="10.00")
    hostile = {
        "Invoice": {"InvoiceID": uuid_of(invoice["id"]), "Contact": {"not a tag": 1}},
        "Amount": "1\u0001",
        "Reference": "bell\u0007 and \ud83d\ude00",
        "1 bad key": "x",
        "Account": [1, 2],
    }
    body = json.dumps({"Payments": [hostile]}).encode()
    headers = {"Content-Type": "application/json", "Accept": accept}
    reply = await CLIENTS["xero"](client).call(
        "PUT", "/api.xro/2.0/Payments" + query, body, headers
    )
    assert reply.status == (400 if not query else 200), reply.body
    if accept == "application/xml":
        root = etree.fromstring(reply.body)  # well-formed
        [echo] = [*root.iterfind("Elements/DataContractBase"), *root.iterfind("Payments/Payment")]
        assert echo.findtext("Reference") == "bell\ufffd and \U0001f600"
        assert echo.find("Account") is None and echo.find("Invoice/Contact") is None
    else:
        document = reply.json()
        [echo] = document.get("Elements") or document["Payments"]
        assert echo["Invoice"] == {"InvoiceID": uuid_of(invoice["id"])}
        assert "1 bad key" not in echo and "Account" not in echo
    assert await settled(client, invoice) == [0]
