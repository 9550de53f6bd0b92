"""The canonical invoice and payment: the one model every dialect maps to."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

ZERO = Decimal(0)

# ISO 4217 minor units where they differ from 2.
_CURRENCY_EXPONENTS = {
    "BHD": 3,
    "BIF": 0,
    "CLP": 0,
    "DJF": 0,
    "GNF": 0,
    "IQD": 3,
    "ISK": 0,
    "JOD": 3,
    "JPY": 0,
    "KMF": 0,
    "KRW": 0,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "PYG": 0,
    "RWF": 0,
    "TND": 3,
    "UGX": 0,
    "VND": 0,
    "VUV": 0,
    "XAF": 0,
    "XOF": 0,
    "XPF": 0,
}


def currency_exponent(currency: str) -> int:
    """How many decimals an amount in `currency` may carry."""
    return _CURRENCY_EXPONENTS.get(currency, 2)


def currency_exponents() -> dict[str, int]:
    """`currency_exponent` as a table: the currencies with other than 2 decimals, and
    under "" every other currency's."""
    return {**_CURRENCY_EXPONENTS, "": currency_exponent("")}


class Method(StrEnum):
    """How a payment was made: the union of every dialect's methods."""

    CASH = "cash"
    CHEQUE = "cheque"
    CARD = "card"
    CREDIT_CARD = "credit_card"
    DEBIT_CARD = "debit_card"
    BANK_TRANSFER = "bank_transfer"
    DIRECT_DEBIT = "direct_debit"
    PAYPAL = "paypal"
    UPI = "upi"
    DEMAND_DRAFT = "demand_draft"
    CREDIT_NOTE = "credit_note"
    COUPON = "coupon"
    OTHER = "other"


class InvoiceStatus(StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    PARTIAL = "partial"
    PAID = "paid"
    OVERDUE = "overdue"
    VOID = "void"


class Payment(BaseModel):
    """One payment as a document carries it; the store fills what the server owns.

    `origin` names the dialect that last wrote the payment and `method_label` the
    method word it used, so that dialect reads back exactly what it wrote.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int | None = None
    tenant: str | None = None
    invoice_id: int | None = None
    amount: Decimal | None = None
    paid_at: AwareDatetime | None = None
    method: Method | None = None
    method_label: str | None = None
    origin: str | None = None
    notes: str | None = None
    reference: str | None = None
    # The deposit account the money went into: its code, its id, or both.
    account_code: str | None = None
    account_id: str | None = None
    tax_withheld: Decimal = Decimal("0.00")
    fee: Decimal = Decimal("0.00")
    recorded_by: str | None = None
    recorded_by_email: str | None = None
    client_app: str | None = None
    notify_customer: bool = False
    created_at: AwareDatetime | None = None
    updated_at: AwareDatetime | None = None
    # When the payment was deleted: a dialect that shows deleted payments (Xero) reads it.
    deleted_at: AwareDatetime | None = None
    # The whole payment this allocation belongs to: its own id for a payment made on one
    # invoice, the first allocation's id for one made on several; it never changes.
    group_id: int | None = None
    # Server-owned: 0 when made; every change to any allocation of the group moves all
    # its live allocations to one new version (optimistic concurrency).
    version: int = 0
    # The customer the payment was recorded for, where its dialect carries one.
    customer: str | None = None
    # Deleted by a void: it settles nothing, like a deleted one, but is remembered.
    voided: bool = False

    @property
    def settled(self) -> Decimal:
        """What this payment takes off the amount due."""
        return (self.amount or ZERO) + self.tax_withheld + self.fee


_PAYMENT_FIELDS = frozenset(Payment.model_fields)


def stored_payment(data: dict[str, Any]) -> Payment:
    """A Payment from a stored row, every field given as its final type: not validated.

    What `Payment.model_construct` makes, without its per-field default handling: a
    list of 2,000 payments spent most of its store time there. The store validated
    each payment on its way in; `data` must name every field, and becomes the model's.
    """
    if data.keys() != _PAYMENT_FIELDS:
        raise ValueError(f"a stored payment has the fields {sorted(_PAYMENT_FIELDS)}")
    payment = Payment.__new__(Payment)
    object.__setattr__(payment, "__dict__", data)
    object.__setattr__(payment, "__pydantic_fields_set__", set(_PAYMENT_FIELDS))
    object.__setattr__(payment, "__pydantic_extra__", None)
    object.__setattr__(payment, "__pydantic_private__", None)
    return payment


class Invoice(BaseModel):
    """An invoice; due amount and status derive from its live payments.

    `settled` and `payment_count` summarise every live payment; `payments` holds
    them one by one only where they were asked for (a listing).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    tenant: str
    number: str
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    total: Decimal
    issued_on: date
    due_on: date
    draft: bool = False
    void: bool = False
    marked_paid: bool = False
    created_at: AwareDatetime
    customer: str | None = None
    settled: Decimal = ZERO
    payment_count: int = 0
    payments: tuple[Payment, ...] = ()

    @property
    def due_amount(self) -> Decimal:
        return self.total - self.settled

    def status(self, today: date | None = None) -> InvoiceStatus:
        today = today or datetime.now(UTC).date()
        if self.void:
            return InvoiceStatus.VOID
        if self.draft:
            return InvoiceStatus.DRAFT
        if self.marked_paid or self.due_amount <= 0:
            return InvoiceStatus.PAID
        if today > self.due_on:
            return InvoiceStatus.OVERDUE
        if self.payment_count:
            return InvoiceStatus.PARTIAL
        return InvoiceStatus.OPEN

    def facts(self, today: date | None = None) -> InvoiceFacts:
        """What an answer may tell of this invoice, as it stands now."""
        return InvoiceFacts(
            self.number, self.currency, self.due_amount, self.status(today), self.customer
        )


@dataclass(frozen=True)
class InvoiceFacts:
    """A payment's invoice as an answer may tell of it: its number, currency, the
    amount still due, its status and its customer, as of the answer."""

    number: str
    currency: str
    due: Decimal
    status: InvoiceStatus
    customer: str | None = None


@dataclass(frozen=True)
class Allocation:
    """The part of a payment that settles one invoice (a payment split across invoices
    has one per invoice; each is stored as a payment row of its group)."""

    invoice_id: int
    amount: Decimal


@dataclass(frozen=True)
class GroupFacts:
    """A whole payment as an answer about one of its allocations may tell of it: the
    sum of its live allocations and how many there are."""

    total: Decimal
    allocations: int


@dataclass(frozen=True)
class Facts:
    """What an answer may tell beside its payments, each dialect choosing what to show:
    their invoices by id, the names of deposit accounts by code, and the whole payments
    they are allocations of by group id (for a dialect that shows groups)."""

    invoices: Mapping[int, InvoiceFacts] = field(default_factory=dict)
    account_names: Mapping[str, str] = field(default_factory=dict)
    groups: Mapping[int, GroupFacts] = field(default_factory=dict)


NO_FACTS = Facts()


# The comparisons a query may make (`PaymentQuery.paid`, a dialect's own filters).
COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


@dataclass(frozen=True)
class PaymentQuery:
    """A search over a tenant's payments, as a dialect's list query asks it.

    `invoice_ids` / `payment_ids` / `group_ids` None means any; `invoice_numbers` names
    invoices by number, `customers` and `references` keep payments with one of those
    values (None: any); `paid` holds comparisons on the payment date (`>=`, `<` ...);
    `deleted` lists deleted payments beside the live ones (a dialect that shows them),
    `voided` the voided ones (deleted by a void) beside the live ones;
    `modified_since` keeps the payments changed (or deleted) after that instant;
    `where` is the dialect's own test of each payment; `order` is (attribute,
    descending) pairs; `page` None: no paging.
    """

    invoice_ids: tuple[int, ...] | None = None
    payment_ids: tuple[int, ...] | None = None
    invoice_numbers: tuple[str, ...] | None = None
    paid: tuple[tuple[str, datetime], ...] = ()
    deleted: bool = False
    modified_since: datetime | None = None
    where: Callable[[Payment], bool] | None = None
    order: tuple[tuple[str, bool], ...] = (("updated_at", False), ("id", False))
    page: int | None = None
    page_size: int = 100
    customers: tuple[str, ...] | None = None
    references: tuple[str, ...] | None = None
    group_ids: tuple[int, ...] | None = None
    voided: bool = False


@dataclass(frozen=True)
class Page:
    """Where a paged answer stands: its page, page size, and the whole result's size."""

    page: int
    page_size: int
    page_count: int
    item_count: int
