"""Invoiless API v1: JSON, string ids, five payment methods, bare-array lists."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import _json
from .base import Format, Kind, Reply, Spec, WireId
from .errors import GatewayError
from .jsonapi import JsonDialect
from .model import Method


class Invoiless(JsonDialect):
    name = "invoiless"
    fields = (
        Spec("id", "id", Kind.ID, writable=False),
        Spec("invoice", "invoice_id", Kind.INVOICE_ID, writable=False),
        Spec("amount", "amount", Kind.AMOUNT),
        Spec("method", "method", Kind.METHOD),
        Spec("paidAt", "paid_at", Kind.DATE),
        Spec("notes", "notes", Kind.TEXT),
        Spec("sendNotification", "notify_customer", Kind.BOOL),
    )
    required = frozenset({"method"})
    max_notes = 500
    methods = {
        "Cash": Method.CASH,
        "Cheque": Method.CHEQUE,
        "Card": Method.CARD,
        "BankTransfer": Method.BANK_TRANSFER,
        "Other": Method.OTHER,
    }
    method_words = {
        Method.CASH: "Cash",
        Method.CHEQUE: "Cheque",
        Method.CARD: "Card",
        Method.CREDIT_CARD: "Card",
        Method.DEBIT_CARD: "Card",
        Method.BANK_TRANSFER: "BankTransfer",
        Method.DIRECT_DEBIT: "BankTransfer",
        Method.PAYPAL: "Other",
        Method.UPI: "Other",
        Method.DEMAND_DRAFT: "Cheque",
        Method.CREDIT_NOTE: "Other",
        Method.COUPON: "Other",
        Method.OTHER: "Other",
    }
    # Invoiless documents 400 for a bad request body, field problems included.
    statuses = {"validation": 400}

    def wire_id(self, number: int) -> WireId:
        return str(number)

    def parse_id(self, text: object) -> int | None:
        return super().parse_id(text) if isinstance(text, str) else None

    def error_details(self, body: bytes, fmt: Format) -> tuple[str, dict[str, str]]:
        document = _json.loads(body) if body else None
        error = document.get("error") if isinstance(document, dict) else None
        if not isinstance(error, dict):
            return "Request refused", {}
        fields = error.get("fields")
        problems = {str(k): str(v) for k, v in fields.items()} if isinstance(fields, dict) else {}
        return str(error.get("message") or "Request refused"), problems

    def encode_error(self, error: GatewayError, fmt: Format) -> Reply:
        return error_object(error, self.status_of(error), self.wire_fields(error))


def error_object(error: GatewayError, status: int, fields: Mapping[str, str]) -> Reply:
    """`{"error": {"code", "message", "fields"}}`: Invoiless errors, and the admin API's."""
    body: dict[str, Any] = {"code": error.kind, "message": error.message}
    if fields:
        body["fields"] = dict(fields)
    return Reply(status, _json.dumps({"error": body}), error.headers())
