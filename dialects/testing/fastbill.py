"""FastBill's test client and samples: upper-case XML documents, Basic with an api key."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from xml.sax.saxutils import escape

from ..auth import basic_header
from . import RailsSupport


class FastBillSupport(RailsSupport):
    names = {"id": "id", "amount": "amount", "notes": "comment", "paid_on": "date"}
    list_root = "invoice-payments"
    name = "fastbill"
    method = "bank_transfer"
    list_path = "/api/invoice-payments?invoice_id={invoice}"
    create_path = "/api/invoice-payments"
    payment_path = "/api/invoice-payments/{payment}"
    content_type = "text/xml"
    json_headers = {"Accept": "application/json"}

    def section(self, tenant: str) -> dict[str, Any]:
        return {"users": [{"email": f"{tenant}@example.com", "api_key": f"{tenant}-fastbill"}]}

    def hashed(self, section: dict[str, Any], hash: Callable[[str], str]) -> dict[str, Any]:
        return {"users": [{**u, "api_key": hash(u["api_key"])} for u in section["users"]]}

    def backend(self, tenant: str) -> dict[str, Any]:
        return {"user": f"{tenant}@example.com", "password": f"{tenant}-fastbill"}

    def recorded(self, tenant: str) -> tuple[str, str | None]:
        return f"{tenant}@example.com", None

    def credentials(self, tenant: str) -> dict[str, str]:
        return basic_header(f"{tenant}@example.com", f"{tenant}-fastbill")

    def fields(self, invoice: int, paid_on: str, notes: str | None) -> dict[str, Any]:
        data: dict[str, Any] = {"invoice_id": invoice, "date": paid_on}
        return data if notes is None else {**data, "comment": notes}

    def body(
        self, invoice: int, amount: str, paid_on: str, notes: str | None, extra: Mapping[str, str]
    ) -> bytes:
        note = f"<comment>{escape(notes)}</comment>" if notes is not None else ""
        more = "".join(f"<{k}>{v}</{k}>" for k, v in extra.items())
        return (
            f"<invoice-payment><invoice_id>{invoice}</invoice_id><date>{paid_on}</date>"
            f"<amount>{amount}</amount>{note}<type>BANK_TRANSFER</type>{more}</invoice-payment>"
        ).encode()


SUPPORT = FastBillSupport()
