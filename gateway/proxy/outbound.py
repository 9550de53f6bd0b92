"""What a backend is sent of a caller's write, and what is refused or dropped on the way.

Money the backend has no field for is refused (so none is lost), other values it has
no place for are dropped with a warning (refused under strict translation): the loss
rules translation follows too (`gateway.ledger.losses`). A create also gets the
fields the backend requires, with the caller's own defaults.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dialects import Decoded, Dialect
from dialects.errors import LedgerRefused, UpstreamError
from dialects.model import Method
from dialects.parsing import ascii_number
from gateway.ledger.losses import MONEY, OPTIONAL, lost_fields, lost_money
from gateway.ledger.rules import today_midnight


class OutboundRules:
    """The rules of one backend's dialect, strict or not."""

    def __init__(self, dialect: Dialect, *, strict: bool) -> None:
        self.dialect = dialect
        self.strict = strict

    def fields(
        self, caller: Dialect, request: Decoded, *, creating: bool
    ) -> tuple[dict[str, Any], list[str]]:
        """The caller's fields as the backend can carry them, and what had to give
        (warnings name fields as `caller` does)."""
        fields: dict[str, Any] = {**request.provided_values(), **request.options}
        fields.pop("origin", None), fields.pop("method_label", None)
        if request.payment.origin == self.dialect.name:
            fields["origin"], fields["method_label"] = (
                self.dialect.name,
                request.payment.method_label,
            )
        settable, name = self.dialect.settable, self.dialect.name
        warnings: list[str] = []
        problems: dict[str, str] = {}

        def give(attr: str, problem: str, outcome: str) -> None:
            # Strict: refused, so nothing was dropped or substituted; else warned.
            if self.strict:
                problems[attr] = f"{problem} (strict translation)"
            else:
                warnings.append(f"{caller.wire_name(attr)} {problem}{outcome}")

        for attr in lost_money(fields, self.dialect):
            problems[attr] = f"has no place in the {name} backend; refused so no money is lost"
        for attr in lost_fields(fields, self.dialect):
            give(attr, f"has no place in the {name} backend", " and was dropped")
        for attr in (*MONEY, *OPTIONAL):
            if attr not in settable:
                fields.pop(attr, None)
        method = fields.get("method")
        if "method" not in settable and method is not None:
            give("method", f"has no place in the {name} backend", " and was dropped")
            fields.pop("method")
        elif method is not None and method not in self.dialect.method_words:
            # Not strict, the backend's codec sends its fallback and warns of it itself.
            if fields.get("origin") != name and self.strict:
                give("method", f"{method.value} has no {name} equivalent", "")
        if creating:
            self._fill_required(fields, problems, give)
        if problems:
            # Not a malformed request but one the system of record cannot take: 422 in
            # every dialect (ValidationFailed is 400 in some dialects).
            raise LedgerRefused("The backend cannot carry this payment", fields=problems)
        return fields, warnings

    def invoice(self, fields: dict[str, Any], backend_invoice: str) -> None:
        """Name the create's invoice in its body, for a backend that takes it there."""
        if "invoice_id" in self.dialect.settable:
            number = self.dialect.parse_id(backend_invoice)
            fields["invoice_id"] = number if number is not None else _as_int(backend_invoice)

    def _fill_required(
        self,
        fields: dict[str, Any],
        problems: dict[str, str],
        give: Callable[[str, str, str], None],
    ) -> None:
        required = self.dialect.required - {"invoice_id"}
        if "amount" in required and fields.get("amount") is None:
            problems["amount"] = f"is required by the {self.dialect.name} backend"
        if "paid_at" in required and fields.get("paid_at") is None:
            fields["paid_at"] = today_midnight()  # the caller's own default: today
        if "method" in required and fields.get("method") is None:
            give("method", f"is required by the {self.dialect.name} backend", "; sent as other")
            fields["method"] = Method.OTHER


def _as_int(backend_id: str) -> int:
    number = ascii_number(backend_id)
    if number is None:
        raise UpstreamError("The backend's invoice id is not an integer")
    return number
