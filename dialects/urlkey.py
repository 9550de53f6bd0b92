"""Refrens (urlKey): JSON, 24-hex ObjectId-style ids, Feathers.js errors."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any

from . import _json, _values
from .base import Format, Kind, Reply, Spec, WireId
from .errors import GatewayError
from .jsonapi import JsonDialect
from .model import Method

_HEX24 = re.compile(r"[0-9a-f]{24}")

# Feathers.js error names by status.
_FEATHERS = {
    400: "BadRequest",
    401: "NotAuthenticated",
    402: "PaymentError",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    408: "Timeout",
    409: "Conflict",
    411: "LengthRequired",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    422: "Unprocessable",
    429: "TooManyRequests",
    500: "GeneralError",
    501: "NotImplemented",
    502: "BadGateway",
    503: "Unavailable",
    504: "GatewayTimeout",
}


def business_id(tenant: str | None) -> str | None:
    """The 24-hex id a tenant's business shows in urlKey documents."""
    return hashlib.sha256(tenant.encode()).hexdigest()[:24] if tenant else None


class UrlKey(JsonDialect):
    name = "urlkey"
    list_key = "payments"
    fields = (
        Spec("tds", "tax_withheld", Kind.MONEY),
        Spec("transactionCharge", "fee", Kind.MONEY),
        Spec("amount", "amount", Kind.AMOUNT),
        Spec("paymentDate", "paid_at", Kind.DATETIME),
        Spec("paymentMethod", "method", Kind.METHOD),
        Spec("notes", "notes", Kind.TEXT),
        Spec("refId", "reference", Kind.TEXT),
        Spec("business", "business", Kind.CONST, value=lambda p: business_id(p.tenant)),
        Spec("payerBusiness", "payer_business", Kind.CONST, value=lambda p: None),
        Spec("isApproved", "approved", Kind.CONST, value=lambda p: True),
        Spec("isRemoved", "removed", Kind.CONST, value=lambda p: False),
        Spec("appId", "client_app", Kind.TEXT, writable=False),
        Spec("_id", "id", Kind.ID, writable=False),
    )
    required = frozenset({"amount"})
    methods = {
        "ACCOUNT_TRANSFER": Method.BANK_TRANSFER,
        "CASH": Method.CASH,
        "CHEQUE": Method.CHEQUE,
        "CREDIT_CARD": Method.CREDIT_CARD,
        "DEBIT_CARD": Method.DEBIT_CARD,
        "DD": Method.DEMAND_DRAFT,
        "UPI": Method.UPI,
    }
    method_words = {
        Method.CASH: "CASH",
        Method.CHEQUE: "CHEQUE",
        Method.CARD: "DEBIT_CARD",
        Method.CREDIT_CARD: "CREDIT_CARD",
        Method.DEBIT_CARD: "DEBIT_CARD",
        Method.BANK_TRANSFER: "ACCOUNT_TRANSFER",
        Method.DIRECT_DEBIT: "ACCOUNT_TRANSFER",
        Method.PAYPAL: "ACCOUNT_TRANSFER",
        Method.UPI: "UPI",
        Method.DEMAND_DRAFT: "DD",
    }
    # credit_note, coupon and other have no urlKey word: shown as null, with a warning.
    method_fallback = None
    statuses = {"validation": 400}

    def wire_id(self, number: int) -> WireId:
        return f"{number:024x}"

    def parse_id(self, text: object) -> int | None:
        if not isinstance(text, str) or not _HEX24.fullmatch(text):
            return None
        return int(text, 16) or None

    def datetime(self, moment: datetime) -> str:
        return _values.iso_z(moment, millis=True)

    def error_details(self, body: bytes, fmt: Format) -> tuple[str, dict[str, str]]:
        document = _json.loads(body) if body else None
        if not isinstance(document, dict):
            return "Request refused", {}
        errors = document.get("errors")
        problems = {str(k): str(v) for k, v in errors.items()} if isinstance(errors, dict) else {}
        return str(document.get("message") or "Request refused"), problems

    def encode_error(self, error: GatewayError, fmt: Format) -> Reply:
        return feathers_error(self.status_of(error), error.message, self.wire_fields(error), error)


def feathers_error(
    status: int, message: str, fields: dict[str, str], error: GatewayError | None = None
) -> Reply:
    """A Feathers.js error object, the shape of every urlKey error."""
    name = _FEATHERS.get(status, "GeneralError")
    class_name = re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()
    data: dict[str, Any] = {"message": message}
    body = {
        "name": name,
        "message": message,
        "code": status,
        "className": class_name,
        "data": data,
        "errors": fields,
    }
    return Reply(status, _json.dumps(body), error.headers() if error is not None else {})
