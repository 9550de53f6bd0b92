"""FastBill: Rails-style XML (JSON on request), integer ids, upper-case payment types."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from . import _values
from .auth import BasicBackend, email_login
from .base import Kind, Spec
from .model import Method
from .rails import RailsDialect
from .unit import BasicAuth, Credential, DialectUnit, Op, Route, Section, Strict


class FastBill(RailsDialect):
    name = "fastbill"
    root = "invoice-payment"
    list_root = "invoice-payments"
    realm = "FastBill"
    fields = (
        Spec("id", "id", Kind.ID, "integer", server_owned=True),
        Spec("created", "created_at", Kind.DATETIME, "datetime", server_owned=True),
        Spec("invoice_id", "invoice_id", Kind.INVOICE_ID, "integer"),
        Spec("date", "paid_at", Kind.DATE, "date"),
        Spec("amount", "amount", Kind.AMOUNT, "float"),
        Spec("comment", "notes", Kind.TEXT),
        Spec("type", "method", Kind.METHOD),
        Spec("mark_invoice_as_paid", "mark_invoice_paid", Kind.BOOL, "boolean"),
    )
    required = frozenset({"invoice_id", "amount"})
    methods = {
        "CREDIT_NOTE": Method.CREDIT_NOTE,
        "BANK_CARD": Method.CARD,
        "BANK_TRANSFER": Method.BANK_TRANSFER,
        "DEBIT": Method.DIRECT_DEBIT,
        "CASH": Method.CASH,
        "PAYPAL": Method.PAYPAL,
        "CREDIT_CARD": Method.CREDIT_CARD,
        "COUPON": Method.COUPON,
        "MISC": Method.OTHER,
    }
    method_words = {
        Method.CASH: "CASH",
        Method.CHEQUE: "MISC",
        Method.CARD: "BANK_CARD",
        Method.CREDIT_CARD: "CREDIT_CARD",
        Method.DEBIT_CARD: "BANK_CARD",
        Method.BANK_TRANSFER: "BANK_TRANSFER",
        Method.DIRECT_DEBIT: "DEBIT",
        Method.PAYPAL: "PAYPAL",
        Method.UPI: "MISC",
        Method.DEMAND_DRAFT: "MISC",
        Method.CREDIT_NOTE: "CREDIT_NOTE",
        Method.COUPON: "COUPON",
        Method.OTHER: "MISC",
    }

    def datetime(self, moment: datetime) -> str:
        return _values.iso_offset(moment)

    def datetime_text(self, stored: str) -> str:
        return _values.iso_offset_text(stored)


class FastBillUser(Strict):
    email: str
    api_key: str
    name: str = ""


class FastBillAuth(Section):
    users: tuple[FastBillUser, ...] = ()
    routing = ("users.*.email",)

    def credentials(self) -> tuple[Credential, ...]:
        return tuple(email_login(u.email, u.api_key, u.name) for u in self.users)


class FastBillBackend(BasicBackend):
    dialect: Literal["fastbill"]


_PAYMENTS = "/api/invoice-payments"

UNIT = DialectUnit(
    codec=FastBill(),
    routes=(
        Route("GET", _PAYMENTS, Op.LIST, paging=("limit", "offset")),
        Route("POST", _PAYMENTS, Op.CREATE, 201, _PAYMENTS + "/{id}"),
        Route("GET", _PAYMENTS + "/{payment_id}", Op.GET),
        Route("DELETE", _PAYMENTS + "/{payment_id}", Op.DELETE),
    ),
    prefixes=("/api/",),
    caller_auth=BasicAuth(),
    section=FastBillAuth,
    backend=FastBillBackend,
    suffixes=True,
    vendor=("fastbill",),
    testing="dialects.testing.fastbill",
)
