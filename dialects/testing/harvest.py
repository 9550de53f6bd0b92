"""Harvest's test client and samples: Rails XML with typed elements, Basic by email."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from xml.sax.saxutils import escape

from ..auth import basic_header
from . import RailsSupport


class HarvestSupport(RailsSupport):
    names = {"id": "id", "amount": "amount", "notes": "notes", "paid_on": "paid-at"}
    list_root = "payments"
    name = "harvest"
    list_path = "/invoices/{invoice}/payments"
    payment_path = "/invoices/{invoice}/payments/{payment}"
    get_suffix = ".xml"
    list_headers = {"Accept": "application/xml"}
    json_headers = {"Accept": "application/json"}

    def section(self, tenant: str) -> dict[str, Any]:
        user = {"email": f"{tenant}@example.com", "password": f"{tenant}-harvest", "name": "Owner"}
        return {"users": [user]}

    def hashed(self, section: dict[str, Any], hash: Callable[[str], str]) -> dict[str, Any]:
        return {"users": [{**u, "password": hash(u["password"])} for u in section["users"]]}

    def backend(self, tenant: str) -> dict[str, Any]:
        return {"user": f"{tenant}@example.com", "password": f"{tenant}-harvest"}

    def recorded(self, tenant: str) -> tuple[str, str | None]:
        return "Owner", None

    def credentials(self, tenant: str) -> dict[str, str]:
        return basic_header(f"{tenant}@example.com", f"{tenant}-harvest")

    def fields(self, invoice: int, paid_on: str, notes: str | None) -> dict[str, Any]:
        data: dict[str, Any] = {"paid_at": f"{paid_on}T00:00:00Z"}
        return data if notes is None else {**data, "notes": notes}

    def body(
        self, invoice: int, amount: str, paid_on: str, notes: str | None, extra: Mapping[str, str]
    ) -> bytes:
        note = f"<notes>{escape(notes)}</notes>" if notes is not None else ""
        more = "".join(f"<{k}>{v}</{k}>" for k, v in extra.items())
        return (
            f'<payment><paid-at type="datetime">{paid_on}T00:00:00Z</paid-at>'
            f'<amount type="decimal">{amount}</amount>{note}{more}</payment>'
        ).encode()


SUPPORT = HarvestSupport()
