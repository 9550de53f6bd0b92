"""One small client per dialect, speaking the wire format as that vendor's users did.

Responses are read with plain lxml / json, not with the gateway's own codecs, and
turned into a common view ({id, amount, notes, paid_on}) to compare across dialects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web
from aiohttp.test_utils import TestClient
from lxml import etree

from .support import basic, hexid, self_signed_token

View = dict[str, Any]


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)

    def xml(self) -> etree._Element:
        return etree.fromstring(self.body)


class DialectClient:
    name = ""

    def __init__(
        self, client: TestClient[web.Request, web.Application], tenant: str = "acme"
    ) -> None:
        self.client = client
        self.tenant = tenant

    def auth(self) -> dict[str, str]:
        raise NotImplementedError

    async def call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        all_headers = {**self.auth(), **(headers or {})}
        async with self.client.request(method, path, data=body, headers=all_headers) as response:
            return Reply(response.status, await response.read(), dict(response.headers))

    # Each dialect: create, list, get, delete; views are the common shape.
    async def create(
        self, invoice: int, amount: str, *, paid_on: str = "2026-11-20", notes: str | None = None
    ) -> tuple[Reply, int | None]:
        raise NotImplementedError

    async def list(self, invoice: int) -> list[View]:
        raise NotImplementedError

    async def get(self, invoice: int, payment: int) -> View | None:
        raise NotImplementedError

    async def delete(self, invoice: int, payment: int) -> Reply:
        raise NotImplementedError


def _xml_view(element: etree._Element, names: dict[str, str]) -> View:
    values = {child.tag: (None if child.get("nil") == "true" else child.text) for child in element}
    return {
        "id": int(values[names["id"]] or 0),
        "amount": Decimal(values[names["amount"]] or "0"),
        "notes": values[names["notes"]],
        "paid_on": (values[names["paid_on"]] or "")[:10],
    }


class HarvestClient(DialectClient):
    name = "harvest"
    names = {"id": "id", "amount": "amount", "notes": "notes", "paid_on": "paid-at"}

    def auth(self) -> dict[str, str]:
        return basic(f"{self.tenant}@example.com", f"{self.tenant}-harvest")

    async def create(
        self, invoice: int, amount: str, *, paid_on: str = "2026-11-20", notes: str | None = None
    ) -> tuple[Reply, int | None]:
        note = f"<notes>{escape(notes)}</notes>" if notes is not None else ""
        body = (
            f'<payment><paid-at type="datetime">{paid_on}T00:00:00Z</paid-at>'
            f'<amount type="decimal">{amount}</amount>{note}</payment>'
        )
        reply = await self.call(
            "POST",
            f"/invoices/{invoice}/payments.xml",
            body.encode(),
            {"Content-Type": "application/xml"},
        )
        return reply, int(reply.xml().findtext("id") or 0) if reply.status == 201 else None

    async def list(self, invoice: int) -> list[View]:
        reply = await self.call(
            "GET", f"/invoices/{invoice}/payments", headers={"Accept": "application/xml"}
        )
        assert reply.status == 200, reply.body
        root = reply.xml()
        assert root.tag == "payments" and root.get("type") == "array"
        return [_xml_view(item, self.names) for item in root]

    async def get(self, invoice: int, payment: int) -> View | None:
        reply = await self.call("GET", f"/invoices/{invoice}/payments/{payment}.xml")
        return _xml_view(reply.xml(), self.names) if reply.status == 200 else None

    async def delete(self, invoice: int, payment: int) -> Reply:
        return await self.call("DELETE", f"/invoices/{invoice}/payments/{payment}")


class FastBillClient(DialectClient):
    name = "fastbill"
    names = {"id": "id", "amount": "amount", "notes": "comment", "paid_on": "date"}

    def auth(self) -> dict[str, str]:
        return basic(f"{self.tenant}@example.com", f"{self.tenant}-fastbill")

    async def create(
        self, invoice: int, amount: str, *, paid_on: str = "2026-11-20", notes: str | None = None
    ) -> tuple[Reply, int | None]:
        note = f"<comment>{escape(notes)}</comment>" if notes is not None else ""
        body = (
            f"<invoice-payment><invoice_id>{invoice}</invoice_id><date>{paid_on}</date>"
            f"<amount>{amount}</amount>{note}<type>BANK_TRANSFER</type></invoice-payment>"
        )
        reply = await self.call(
            "POST", "/api/invoice-payments", body.encode(), {"Content-Type": "text/xml"}
        )
        return reply, int(reply.xml().findtext("id") or 0) if reply.status == 201 else None

    async def list(self, invoice: int) -> list[View]:
        reply = await self.call("GET", f"/api/invoice-payments.xml?invoice_id={invoice}")
        assert reply.status == 200, reply.body
        root = reply.xml()
        assert root.tag == "invoice-payments" and root.get("type") == "array"
        return [_xml_view(item, self.names) for item in root]

    async def get(self, invoice: int, payment: int) -> View | None:
        reply = await self.call("GET", f"/api/invoice-payments/{payment}")
        return _xml_view(reply.xml(), self.names) if reply.status == 200 else None

    async def delete(self, invoice: int, payment: int) -> Reply:
        return await self.call("DELETE", f"/api/invoice-payments/{payment}")


class InvoilessClient(DialectClient):
    name = "invoiless"

    def auth(self) -> dict[str, str]:
        return {"api-key": f"{self.tenant}-invoiless"}

    @staticmethod
    def view(item: dict[str, Any]) -> View:
        return {
            "id": int(item["id"]),
            "amount": Decimal(str(item["amount"])),
            "notes": item["notes"],
            "paid_on": item["paidAt"],
        }

    async def create(
        self, invoice: int, amount: str, *, paid_on: str = "2026-11-20", notes: str | None = None
    ) -> tuple[Reply, int | None]:
        body = f'{{"amount": {amount}, "method": "BankTransfer", "paidAt": "{paid_on}"'
        body += f", {json.dumps('notes')}: {json.dumps(notes)}}}" if notes is not None else "}"
        reply = await self.call(
            "POST",
            f"/v1/invoices/{invoice}/payments",
            body.encode(),
            {"Content-Type": "application/json"},
        )
        return reply, int(reply.json()["id"]) if reply.status == 201 else None

    async def list(self, invoice: int) -> list[View]:
        reply = await self.call("GET", f"/v1/invoices/{invoice}/payments")
        assert reply.status == 200, reply.body
        items = reply.json()
        assert isinstance(items, list)
        return [self.view(item) for item in items]

    async def get(self, invoice: int, payment: int) -> View | None:
        reply = await self.call("GET", f"/v1/payments/{payment}")
        return self.view(reply.json()) if reply.status == 200 else None

    async def delete(self, invoice: int, payment: int) -> Reply:
        return await self.call("DELETE", f"/v1/payments/{payment}")


class UrlKeyClient(DialectClient):
    name = "urlkey"

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self_signed_token(f'{self.tenant}-app')}"}

    def base(self, invoice: int) -> str:
        return f"/businesses/{self.tenant}-biz/invoices/{hexid(invoice)}/payments"

    @staticmethod
    def view(item: dict[str, Any]) -> View:
        return {
            "id": int(item["_id"], 16),
            "amount": Decimal(str(item["amount"])),
            "notes": item["notes"],
            "paid_on": item["paymentDate"][:10],
        }

    async def create(
        self, invoice: int, amount: str, *, paid_on: str = "2026-11-20", notes: str | None = None
    ) -> tuple[Reply, int | None]:
        payload: dict[str, Any] = {
            "paymentDate": f"{paid_on}T00:00:00.000Z",
            "paymentMethod": "UPI",
        }
        if notes is not None:
            payload["notes"] = notes
        body = json.dumps(payload)[:-1] + f', "amount": {amount}}}'
        reply = await self.call(
            "POST", self.base(invoice), body.encode(), {"Content-Type": "application/json"}
        )
        return reply, int(reply.json()["_id"], 16) if reply.status == 201 else None

    async def list(self, invoice: int) -> list[View]:
        reply = await self.call("GET", self.base(invoice))
        assert reply.status == 200, reply.body
        return [self.view(item) for item in reply.json()["payments"]]

    async def get(self, invoice: int, payment: int) -> View | None:
        # urlKey has no get-one: a payment is found in its invoice's list.
        found = [item for item in await self.list(invoice) if item["id"] == payment]
        return found[0] if found else None

    async def delete(self, invoice: int, payment: int) -> Reply:
        raise NotImplementedError("urlKey has no delete")


CLIENTS: dict[str, type[DialectClient]] = {
    c.name: c for c in (HarvestClient, FastBillClient, InvoilessClient, UrlKeyClient)
}
