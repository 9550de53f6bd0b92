"""Xero's Python SDK creating a batch of payments under one Idempotency-Key, as its
`create_payments` offers, against a real gateway process."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from xero_python.accounting import (  # type: ignore[import-untyped]
    Account,
    AccountingApi,
    Invoice,
    Payment,
    Payments,
)

from ..http.server import Server
from .test_xero_sdk import admin, new_invoice
from .test_xero_sdk import sdk as sdk  # noqa: F401 (fixtures)
from .test_xero_sdk import server as server  # noqa: F401

OVERPAID = "Payment amount exceeds the amount outstanding on this document"


def payment(invoice_id: str, amount: float, reference: str) -> Payment:
    return Payment(
        invoice=Invoice(invoice_id=invoice_id),
        account=Account(code="090"),
        date=date(2026, 11, 20),
        amount=amount,
        reference=reference,
    )


def due(server: Server, invoice: dict[str, str]) -> Decimal:
    return Decimal(admin(server, "GET", f"/gateway/v1/invoices/{invoice['id']}")["due_amount"])


def test_sdk_retries_a_keyed_batch_and_pays_once(
    server: Server, sdk: tuple[AccountingApi, str]
) -> None:
    api, tenant = sdk
    first, second = new_invoice(server, "SDKB-1", "50.00"), new_invoice(server, "SDKB-2", "50.00")
    batch = Payments(
        payments=[
            payment(first["dialect_ids"]["xero"], 10.0, "one"),
            payment(second["dialect_ids"]["xero"], 20.0, "two"),
            payment(first["dialect_ids"]["xero"], 5.0, "three"),
        ]
    )
    made = api.create_payments(tenant, batch, idempotency_key="sdk-batch-1").payments
    again = api.create_payments(tenant, batch, idempotency_key="sdk-batch-1").payments
    assert [p.reference for p in made] == ["one", "two", "three"]
    assert [p.payment_id for p in again] == [p.payment_id for p in made]
    assert (due(server, first), due(server, second)) == (Decimal("35.00"), Decimal("30.00"))


def test_sdk_item_by_item_batch_names_each_refused_item(
    server: Server, sdk: tuple[AccountingApi, str]
) -> None:
    api, tenant = sdk
    invoice = new_invoice(server, "SDKB-3", "10.00")
    invoice_id = invoice["dialect_ids"]["xero"]
    batch = Payments(payments=[payment(invoice_id, 6.0, "kept"), payment(invoice_id, 6.0, "over")])
    answered = api.create_payments(
        tenant, batch, summarize_errors=False, idempotency_key="sdk-batch-2"
    ).payments
    again = api.create_payments(
        tenant, batch, summarize_errors=False, idempotency_key="sdk-batch-2"
    ).payments
    kept, over = answered
    assert (kept.status_attribute_string, kept.reference) == ("OK", "kept")
    assert (over.status_attribute_string, over.reference, over.amount) == ("ERROR", "over", 6.0)
    assert [error.message for error in over.validation_errors] == [OVERPAID]
    assert over.payment_id is None
    assert [p.payment_id for p in again] == [kept.payment_id, None]
    assert due(server, invoice) == Decimal("4.00")
