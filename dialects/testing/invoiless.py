"""Invoiless's test client and samples: flat JSON, string ids, an api-key header."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from . import Answer, Support, View, error_object


class InvoilessSupport(Support):
    name = "invoiless"
    method = "bank_transfer"
    deleted_status = 204
    list_path = "/v1/invoices/{invoice}/payments"
    payment_path = "/v1/payments/{payment}"

    def section(self, tenant: str) -> dict[str, Any]:
        return {"keys": [{"key": f"{tenant}-invoiless", "scopes": [f"{tenant}-scope"]}]}

    def hashed(self, section: dict[str, Any], hash: Callable[[str], str]) -> dict[str, Any]:
        return {"keys": [{**k, "key": hash(k["key"])} for k in section["keys"]]}

    def backend(self, tenant: str) -> dict[str, Any]:
        return {"api_key": f"{tenant}-invoiless", "scope_id": f"{tenant}-scope"}

    def recorded(self, tenant: str) -> tuple[str, str | None]:
        return ("api-key", None)

    def credentials(self, tenant: str) -> dict[str, str]:
        return {"api-key": f"{tenant}-invoiless"}

    def fields(self, invoice: int, paid_on: str, notes: str | None) -> dict[str, Any]:
        data: dict[str, Any] = {"method": "BankTransfer", "paidAt": paid_on}
        return data if notes is None else {**data, "notes": notes}

    def view(self, body: bytes) -> View:
        return _view(Answer(200, {}, body).json())

    def views(self, body: bytes) -> list[View]:
        items = Answer(200, {}, body).json()
        assert isinstance(items, list)
        return [_view(item) for item in items]

    def error(self, answer: Answer, status: int, kind: str, fmt: str | None = None) -> str:
        text = error_object(answer, status)
        assert answer.json()["error"]["code"] == kind, answer.body
        return text


def _view(item: dict[str, Any]) -> View:
    return {
        "id": int(item["id"]),
        "amount": Decimal(str(item["amount"])),
        "notes": item["notes"],
        "paid_on": item["paidAt"],
    }


SUPPORT = InvoilessSupport()
