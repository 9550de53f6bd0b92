"""The ledger seen over HTTP: due amounts, statuses and refusals in every dialect."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

import dialects
from dialects import testing
from gateway.serving.app import create_app

from ..clients import Reply
from ..conftest import AiohttpClient, Client
from ..http.processes import canonical_status
from ..http.wire import (
    DIALECTS,
    call,
    delete,
    error_messages,
    exact,
    json_body,
    make_invoice,
    pay,
    payment_id,
    state,
    urlkey_path,
)
from ..support import ADMIN, make_config

pytestmark = pytest.mark.stores

JSON = {"Content-Type": "application/json"}


async def invoiless_payment(client: Client, number: int) -> dict[str, Any]:
    reply = await call(client, "invoiless", "GET", f"/v1/payments/{number}")
    assert reply.status == 200, reply.body
    found: dict[str, Any] = reply.json()
    return found


def own_error(dialect: str, reply: Reply, kind: str) -> str:
    """The text of `reply`, checked to be the dialect's `kind` error with the status its
    codec states for it (its test support reads the shape)."""
    status = dialects.get(dialect).statuses.get(kind, 422)  # both kinds are 422 by default
    return testing.support(dialect).error(reply.answer(), status, kind)


def names_the_amount(dialect: str, text: str) -> bool:
    return dialects.get(dialect).wire_name("amount") in text


def validation_messages(reply: Reply) -> list[str]:
    """The messages of Xero's ValidationException: an ApiException (XML) as answered here."""
    root = reply.xml()
    assert (root.tag, root.findtext("Type")) == ("ApiException", "ValidationException")
    return [element.text or "" for element in root.iter("Message")][1:]


def created(dialect: str) -> int:
    return testing.support(dialect).create_status


def assert_overpayment_refused(dialect: str, reply: Reply, settled: str, due: str) -> None:
    """The refusal each dialect answers for a payment that settles more than is due."""
    assert reply.status == dialects.get(dialect).statuses.get("ledger", 422), reply.body
    field = f"exceeds the amount due ({due})"
    message = f"Payment of {settled} exceeds the amount due ({due})"
    if dialect == "xero":
        assert validation_messages(reply) == [
            "Payment amount exceeds the amount outstanding on this document"
        ]
    elif dialect in ("harvest", "fastbill"):
        assert reply.headers["Content-Type"] == "application/xml; charset=utf-8"
        assert error_messages(reply) == [f"Amount {field}"]
    elif dialect == "invoiless":
        assert reply.json() == {
            "error": {"code": "ledger", "message": message, "fields": {"amount": field}}
        }
    elif dialect == "urlkey":
        assert reply.json() == {
            "name": "Unprocessable",
            "message": message,
            "code": 422,
            "className": "unprocessable",
            "data": {"message": message},
            "errors": {"amount": field},
        }
    else:  # a dialect documented nowhere here: its own error shape, naming the amount
        assert names_the_amount(dialect, own_error(dialect, reply, "ledger"))


async def test_due_amount_and_status_follow_create_update_and_delete(client: Client) -> None:
    invoice = await make_invoice(client)
    assert await state(client, invoice) == ("1000.00", "open", 0)

    first = await pay(client, "invoiless", invoice, "300")
    assert first.status == 201, first.body
    first_id = payment_id("invoiless", first)
    assert await state(client, invoice) == ("700.00", "partial", 1)

    second = await pay(client, "harvest", invoice, "700.00")
    assert second.status == 201, second.body
    second_id = payment_id("harvest", second)
    assert await state(client, invoice) == ("0.00", "paid", 2)

    patched = await call(
        client, "invoiless", "PATCH", f"/v1/payments/{first_id}", b'{"amount": 200}', JSON
    )
    assert patched.status == 200, patched.body
    assert patched.json()["amount"] == 200
    assert await state(client, invoice) == ("100.00", "partial", 2)

    gone = await delete(client, "harvest", invoice, second_id)
    assert gone.status == 200, gone.body
    assert await state(client, invoice) == ("800.00", "partial", 1)

    gone = await delete(client, "invoiless", invoice, first_id)
    assert gone.status == 204, gone.body
    assert await state(client, invoice) == ("1000.00", "open", 0)


async def test_the_ledger_keeps_the_day_of_the_apps_clock(
    aiohttp_client: AiohttpClient, database: str
) -> None:
    """What is overdue, and the date of a payment given without one, follow the clock
    create_app is given, not the host's: a test (tests/test_readme.py) may pick any day."""
    day = datetime(2031, 5, 17, 23, 30, tzinfo=UTC)
    client = await aiohttp_client(create_app(make_config(database), clock=lambda: day))
    due_yesterday = await make_invoice(client, issued_on="2031-05-01", due_on="2031-05-16")
    due_today = await make_invoice(client, issued_on="2031-05-01", due_on="2031-05-17")

    dateless = await call(
        client, "invoiless", "POST", f"/v1/invoices/{due_today}/payments",
        json_body({"amount": 10, "method": "Cash"}), JSON,
    )  # fmt: skip

    assert (await state(client, due_yesterday))[1] == "overdue"
    assert (await state(client, due_today))[1] == "partial"
    assert dateless.status == 201, dateless.body
    assert dateless.json()["paidAt"] == "2031-05-17"


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_overpayment_is_refused_with_422_in_the_callers_shape(
    client: Client, dialect: str
) -> None:
    invoice = await make_invoice(client)
    assert (await pay(client, "invoiless", invoice, "600")).status == 201
    before = await state(client, invoice)
    assert before == ("400.00", "partial", 1)

    reply = await pay(client, dialect, invoice, "400.01")

    assert_overpayment_refused(dialect, reply, "400.01", "400.00")
    assert await state(client, invoice) == before


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_updating_a_payment_beyond_the_due_amount_is_refused(
    client: Client, dialect: str
) -> None:
    invoice = await make_invoice(client)
    created = await pay(client, "invoiless", invoice, "600")
    number = payment_id("invoiless", created)
    await pay(client, dialect, invoice, "300")
    before = await state(client, invoice)

    reply = await call(
        client, "invoiless", "PATCH", f"/v1/payments/{number}", b'{"amount": 700.01}', JSON
    )

    assert_overpayment_refused("invoiless", reply, "700.01", "700.00")
    assert await state(client, invoice) == before
    assert (await invoiless_payment(client, number))["amount"] == 600


@pytest.mark.parametrize(
    ("first", "second"), list(itertools.product(DIALECTS, repeat=2)), ids="+".join
)
async def test_two_concurrent_payments_exceeding_the_due_amount_exactly_one_succeeds(
    client: Client, first: str, second: str
) -> None:
    invoice = await make_invoice(client)

    replies = await asyncio.gather(
        pay(client, first, invoice, "600"), pay(client, second, invoice, "600")
    )

    made = [d for d, r in zip((first, second), replies, strict=True) if r.status == created(d)]
    assert len(made) == 1, [reply.body for reply in replies]
    for dialect, reply in zip((first, second), replies, strict=True):
        if reply.status != created(dialect):
            assert_overpayment_refused(dialect, reply, "600.00", "400.00")
    assert await state(client, invoice) == ("400.00", "partial", 1)


async def test_many_concurrent_payments_never_overdraw_the_invoice(client: Client) -> None:
    invoice = await make_invoice(client)

    sent = [DIALECTS[n % 4] for n in range(8)]
    replies = await asyncio.gather(*(pay(client, name, invoice, "300") for name in sent))

    statuses = [canonical_status(n, reply.status) for n, reply in zip(sent, replies, strict=True)]
    assert sorted(statuses) == [201] * 3 + [422] * 5
    assert await state(client, invoice) == ("100.00", "partial", 3)


async def test_fastbill_mark_invoice_as_paid_closes_the_invoice_until_deleted(
    client: Client,
) -> None:
    invoice = await make_invoice(client)

    marked = await pay(client, "fastbill", invoice, "100", mark_invoice_as_paid="1")
    assert marked.status == 201, marked.body
    number = payment_id("fastbill", marked)
    assert await state(client, invoice) == ("900.00", "paid", 1)

    again = await pay(client, "fastbill", invoice, "10")
    assert again.status == 422
    assert error_messages(again) == ["Invoice id is paid and takes no payments"]
    elsewhere = await pay(client, "invoiless", invoice, "10")
    assert elsewhere.status == 422
    assert elsewhere.json() == {
        "error": {
            "code": "ledger",
            "message": "Invoice is paid and takes no payments",
            "fields": {"invoice": "is paid and takes no payments"},
        }
    }
    assert await state(client, invoice) == ("900.00", "paid", 1)

    gone = await delete(client, "fastbill", invoice, number)
    assert gone.status == 200, gone.body
    assert await state(client, invoice) == ("1000.00", "open", 0)
    assert (await pay(client, "fastbill", invoice, "10")).status == 201
    assert await state(client, invoice) == ("990.00", "partial", 1)


async def test_fastbill_mark_invoice_as_paid_accepts_rails_booleans(client: Client) -> None:
    invoice = await make_invoice(client)
    body = (
        f'<invoice-payment><invoice_id type="integer">{invoice}</invoice_id>'
        '<amount type="float">1.5</amount>'
        '<mark-invoice-as-paid type="boolean">true</mark-invoice-as-paid></invoice-payment>'
    )
    reply = await call(
        client,
        "fastbill",
        "POST",
        "/api/invoice-payments",
        body.encode(),
        {"Content-Type": "application/xml"},
    )
    assert reply.status == 201, reply.body
    assert await state(client, invoice) == ("998.50", "paid", 1)


async def test_invoiless_amount_omitted_pays_the_whole_due_amount(client: Client) -> None:
    invoice = await make_invoice(client)
    assert (await pay(client, "harvest", invoice, "250.10")).status == 201

    reply = await call(
        client, "invoiless", "POST", f"/v1/invoices/{invoice}/payments", b'{"method":"Cash"}', JSON
    )

    assert reply.status == 201, reply.body
    created = exact(reply)
    assert created["amount"] == Decimal("749.9")
    assert created["method"] == "Cash"
    assert created["paidAt"] == datetime.now(UTC).date().isoformat()
    assert await state(client, invoice) == ("0.00", "paid", 2)


async def test_invoiless_amount_omitted_on_a_settled_invoice_is_refused(client: Client) -> None:
    invoice = await make_invoice(client)
    assert (await pay(client, "urlkey", invoice, "1000")).status == 201

    reply = await call(
        client, "invoiless", "POST", f"/v1/invoices/{invoice}/payments", b'{"method":"Cash"}', JSON
    )

    assert reply.status == 422
    assert reply.json()["error"]["code"] == "ledger"
    assert await state(client, invoice) == ("0.00", "paid", 1)


async def test_invoiless_put_resets_omitted_fields_and_patch_keeps_them(client: Client) -> None:
    invoice = await make_invoice(client)
    assert (await pay(client, "harvest", invoice, "100")).status == 201
    created = await call(
        client,
        "invoiless",
        "POST",
        f"/v1/invoices/{invoice}/payments",
        json_body(
            {
                "amount": Decimal("300.25"),
                "method": "Cheque",
                "paidAt": "2026-03-01",
                "notes": "first",
                "sendNotification": True,
            }
        ),
        JSON,
    )
    assert created.status == 201, created.body
    number = created.json()["id"]
    path = f"/v1/payments/{number}"
    expected = {
        "id": number,
        "invoice": str(invoice),
        "amount": Decimal("300.25"),
        "method": "Cheque",
        "paidAt": "2026-03-01",
        "notes": "first",
        "sendNotification": True,
    }
    assert exact(created) == expected

    patched = await call(client, "invoiless", "PATCH", path, b'{"notes": "second"}', JSON)
    assert patched.status == 200, patched.body
    expected["notes"] = "second"
    assert exact(patched) == expected
    assert exact(await call(client, "invoiless", "GET", path)) == expected
    assert await state(client, invoice) == ("599.75", "partial", 2)

    put = await call(
        client, "invoiless", "PUT", path, b'{"method": "Cash", "paidAt": "2026-04-01"}', JSON
    )
    assert put.status == 200, put.body
    replaced = {
        **expected,
        "amount": Decimal("900"),
        "method": "Cash",
        "paidAt": "2026-04-01",
        "notes": None,
        "sendNotification": False,
    }
    assert exact(put) == replaced
    assert exact(await call(client, "invoiless", "GET", path)) == replaced
    assert await state(client, invoice) == ("0.00", "paid", 2)

    put = await call(client, "invoiless", "PUT", path, b'{"method": "Card", "amount": 5}', JSON)
    assert put.status == 200, put.body
    assert exact(put) == {
        **replaced,
        "amount": Decimal("5"),
        "method": "Card",
        "paidAt": datetime.now(UTC).date().isoformat(),
    }
    assert await state(client, invoice) == ("895.00", "partial", 2)


@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_invoiless_method_is_required_on_create_and_put(client: Client, method: str) -> None:
    invoice = await make_invoice(client)
    created = await pay(client, "invoiless", invoice, "100")
    number = payment_id("invoiless", created)
    path = f"/v1/invoices/{invoice}/payments" if method == "POST" else f"/v1/payments/{number}"

    reply = await call(client, "invoiless", method, path, b'{"amount": 50, "notes": "x"}', JSON)

    assert reply.status == 400, reply.body
    assert reply.json() == {
        "error": {
            "code": "validation",
            "message": "Validation failed",
            "fields": {"method": "can't be blank"},
        }
    }
    assert await state(client, invoice) == ("900.00", "partial", 1)
    assert (await invoiless_payment(client, number))["amount"] == 100


async def test_invoiless_patch_needs_no_method(client: Client) -> None:
    invoice = await make_invoice(client)
    number = payment_id("invoiless", await pay(client, "invoiless", invoice, "100"))

    reply = await call(
        client, "invoiless", "PATCH", f"/v1/payments/{number}", b'{"amount": 50}', JSON
    )

    assert reply.status == 200, reply.body
    assert reply.json()["method"] == "BankTransfer"
    assert await state(client, invoice) == ("950.00", "partial", 1)


async def test_urlkey_tds_and_transaction_charge_count_toward_settlement(client: Client) -> None:
    invoice = await make_invoice(client)

    reply = await pay(client, "urlkey", invoice, "900", tds="50", transactionCharge="50")

    assert reply.status == 201, reply.body
    created = reply.json()
    assert (created["amount"], created["tds"], created["transactionCharge"]) == (900, 50, 50)
    assert await state(client, invoice) == ("0.00", "paid", 1)
    listed = await call(client, "urlkey", "GET", urlkey_path(invoice))
    assert [(p["amount"], p["tds"], p["transactionCharge"]) for p in listed.json()["payments"]] == [
        (900, 50, 50)
    ]


async def test_urlkey_tds_and_transaction_charge_can_overpay(client: Client) -> None:
    invoice = await make_invoice(client)

    reply = await pay(client, "urlkey", invoice, "900", tds="50.5", transactionCharge="50")

    assert_overpayment_refused("urlkey", reply, "1000.50", "1000.00")
    assert await state(client, invoice) == ("1000.00", "open", 0)


async def test_tax_withheld_and_fee_show_in_the_admin_view(client: Client) -> None:
    invoice = await make_invoice(client)
    reply = await pay(client, "urlkey", invoice, "100", tds="10", transactionCharge="2.5")
    assert reply.status == 201, reply.body

    response = await client.get(f"/gateway/v1/invoices/{invoice}", headers=ADMIN)
    payment = (await response.json())["payments"][0]

    assert (payment["amount"], payment["tax_withheld"], payment["fee"]) == (
        "100.00",
        "10.00",
        "2.50",
    )
    assert await state(client, invoice) == ("887.50", "partial", 1)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_amount_with_more_decimals_than_the_currency_is_refused(
    client: Client, dialect: str
) -> None:
    invoice = await make_invoice(client, total="1000", currency="JPY")

    reply = await pay(client, dialect, invoice, "10.5")

    message = "must have at most 0 decimal places for JPY"
    if dialect == "xero":
        assert reply.status == 400, reply.body
        assert validation_messages(reply) == [f"Amount {message}"]
    elif dialect in ("harvest", "fastbill"):
        assert reply.status == 422, reply.body
        assert error_messages(reply) == [f"Amount {message}"]
    elif dialect == "invoiless":
        assert reply.status == 400, reply.body
        assert reply.json() == {
            "error": {
                "code": "validation",
                "message": "Validation failed",
                "fields": {"amount": message},
            }
        }
    elif dialect == "urlkey":
        assert reply.status == 400, reply.body
        body = reply.json()
        assert (body["name"], body["code"], body["className"]) == ("BadRequest", 400, "bad-request")
        assert body["errors"] == {"amount": message}
    else:  # a dialect documented nowhere here: its own error shape, naming the amount
        assert message in own_error(dialect, reply, "validation")
    due, status, count = await state(client, invoice)
    assert (Decimal(due), status, count) == (Decimal(1000), "open", 0)

    accepted = await pay(client, dialect, invoice, "10")
    assert accepted.status == created(dialect), accepted.body
    due, status, count = await state(client, invoice)
    assert (Decimal(due), status, count) == (Decimal(990), "partial", 1)


async def test_amount_with_three_decimals_is_refused_in_euro(client: Client) -> None:
    invoice = await make_invoice(client)

    reply = await pay(client, "harvest", invoice, "10.005")

    assert reply.status == 422, reply.body
    assert error_messages(reply) == ["Amount must have at most 2 decimal places"]
    assert await state(client, invoice) == ("1000.00", "open", 0)


async def test_invoice_past_its_due_date_is_overdue_until_paid(client: Client) -> None:
    invoice = await make_invoice(client, issued_on="2020-01-01", due_on="2020-01-31")
    assert await state(client, invoice) == ("1000.00", "overdue", 0)

    partial = await pay(client, "fastbill", invoice, "400")
    assert partial.status == 201, partial.body
    assert await state(client, invoice) == ("600.00", "overdue", 1)

    rest = await pay(client, "harvest", invoice, "600")
    assert rest.status == 201, rest.body
    assert await state(client, invoice) == ("0.00", "paid", 2)

    gone = await delete(client, "fastbill", invoice, payment_id("fastbill", partial))
    assert gone.status == 200
    assert await state(client, invoice) == ("400.00", "overdue", 1)


async def test_fastbill_mark_as_paid_on_an_overdue_invoice_and_delete_returns_it_to_overdue(
    client: Client,
) -> None:
    invoice = await make_invoice(client, issued_on="2020-01-01", due_on="2020-01-31")

    marked = await pay(client, "fastbill", invoice, "100", mark_invoice_as_paid="1")
    assert marked.status == 201, marked.body
    assert await state(client, invoice) == ("900.00", "paid", 1)

    gone = await delete(client, "fastbill", invoice, payment_id("fastbill", marked))
    assert gone.status == 200
    assert await state(client, invoice) == ("1000.00", "overdue", 0)
