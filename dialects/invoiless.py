"""Invoiless API v1: JSON, string ids, five payment methods, bare-array lists."""

from __future__ import annotations

from typing import Literal

from . import _json
from .base import Kind, Reply, Spec, error_object
from .errors import GatewayError
from .jsonapi import JsonCodec, JsonDialect
from .model import Method
from .unit import (
    ApiKeyAuth,
    BackendConfig,
    ClientAuth,
    Credential,
    DialectUnit,
    Op,
    Route,
    Section,
    StaticHeaders,
    Strict,
)


class InvoilessJson(JsonCodec):
    """Invoiless's error bodies, written and read."""

    def encode_error(self, error: GatewayError) -> Reply:
        return error_object(error, self.dialect.status_of(error), self.dialect.wire_fields(error))

    def error_details(self, body: bytes) -> tuple[str, dict[str, str]]:
        document = _json.loads(body) if body else None
        error = document.get("error") if isinstance(document, dict) else None
        if not isinstance(error, dict):
            return "Request refused", {}
        fields = error.get("fields")
        problems = {str(k): str(v) for k, v in fields.items()} if isinstance(fields, dict) else {}
        return str(error.get("message") or "Request refused"), problems


class Invoiless(JsonDialect):
    codec_types = {"json": InvoilessJson}
    name = "invoiless"
    fields = (
        Spec("id", "id", Kind.ID, server_owned=True),
        Spec("invoice", "invoice_id", Kind.INVOICE_ID, server_owned=True),
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
    id_format = "d"

    def parse_id(self, text: object) -> int | None:
        return super().parse_id(text) if isinstance(text, str) else None


class InvoilessKey(Strict):
    key: str
    name: str = "api-key"
    scopes: tuple[str, ...] = ()


class InvoilessAuth(Section):
    keys: tuple[InvoilessKey, ...] = ()
    routing = ("keys.*.key",)

    def credentials(self) -> tuple[Credential, ...]:
        return tuple(
            Credential(key.key, key.name, label=f"key-{index}", scopes=key.scopes)
            for index, key in enumerate(self.keys)
        )


class InvoilessBackend(BackendConfig):
    dialect: Literal["invoiless"]
    api_key: str | None = None
    scope_id: str | None = None
    needs = ("api_key",)

    def client_auth(self) -> ClientAuth:
        headers = {"api-key": self.api_key or ""}
        if self.scope_id:
            headers["scope-id"] = self.scope_id
        return StaticHeaders(headers)


UNIT = DialectUnit(
    codec=Invoiless(),
    routes=(
        Route("POST", "/v1/invoices/{invoice_id}/payments", Op.CREATE, 201, "/v1/payments/{id}"),
        Route("GET", "/v1/invoices/{invoice_id}/payments", Op.LIST),
        Route("GET", "/v1/payments/{payment_id}", Op.GET),
        Route("PUT", "/v1/payments/{payment_id}", Op.REPLACE),
        Route("PATCH", "/v1/payments/{payment_id}", Op.PATCH),
        Route("DELETE", "/v1/payments/{payment_id}", Op.DELETE, 204),
    ),
    prefixes=("/v1/",),
    caller_auth=ApiKeyAuth("api-key", "scope-id"),
    section=InvoilessAuth,
    backend=InvoilessBackend,
    vendor=("invoiless",),
    testing="dialects.testing.invoiless",
)
