"""Mass assignment (OWASP API3): fields the server owns are never taken from a body.

Each request is otherwise good, so it is served; what is checked is that the stored
payment (read back through the admin API) has the server's id, creation time, tenant,
invoice, recorder and app, whatever the body claimed, and that only its own invoice
moved, by exactly its amount.
"""

from __future__ import annotations

import time
from datetime import datetime
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from lxml import etree

from dialects.urlkey import business_id

from .conftest import Catalogue
from .harness import admin, credentials, hexid, ledger, new_invoice, pay, send

EVIL = 999_999
LONG_AGO = "2000-01-01T00:00:00Z"


def bodies(dialect: str, invoice: int, other: int) -> tuple[str, str, str]:
    """(path, content type, body) of a 10.00 create claiming what the server owns."""
    if dialect == "harvest":
        body = (
            '<payment><paid-at type="datetime">2026-11-20T00:00:00Z</paid-at>'
            '<amount type="decimal">10.00</amount>'
            f'<id type="integer">{EVIL}</id><invoice-id type="integer">{other}</invoice-id>'
            f'<created-at type="datetime">{LONG_AGO}</created-at>'
            "<recorded-by>Mallory</recorded-by><recorded-by-email>m@evil.example</recorded-by-email>"
            "<tenant>globex</tenant></payment>"
        )
        return f"/invoices/{invoice}/payments", "application/xml", body
    if dialect == "harvest-json":
        body = (
            f'{{"payment": {{"paid_at": "2026-11-20", "amount": "10.00", "id": {EVIL},'
            f' "invoice_id": {other}, "created_at": "{LONG_AGO}", "recorded_by": "Mallory",'
            ' "recorded_by_email": "m@evil.example"}}'
        )
        return f"/invoices/{invoice}/payments.json", "application/json", body
    if dialect == "fastbill":
        body = (
            f"<invoice-payment><invoice_id>{invoice}</invoice_id><amount>10.00</amount>"
            f'<id type="integer">{EVIL}</id><created>{LONG_AGO}</created>'
            "<tenant>globex</tenant></invoice-payment>"
        )
        return "/api/invoice-payments", "application/xml", body
    if dialect == "invoiless":
        body = (
            f'{{"amount": 10, "method": "Cash", "id": "{EVIL}", "invoice": "{other}",'
            ' "tenant": "globex", "createdAt": "2000-01-01"}'
        )
        return f"/v1/invoices/{invoice}/payments", "application/json", body
    body = (
        f'{{"amount": 10, "paymentMethod": "CASH", "_id": "{hexid(EVIL)}",'
        f' "business": "{business_id("globex")}", "payerBusiness": "{business_id("globex")}",'
        ' "isApproved": false, "isRemoved": true, "appId": "mallory-app", "tenant": "globex"}'
    )
    return f"/businesses/acme-biz/invoices/{hexid(invoice)}/payments", "application/json", body


def created_id(dialect: str, answer_json: Any, body: bytes) -> int:
    if dialect in ("harvest", "fastbill"):
        return int(etree.fromstring(body).findtext("id") or "0")
    if dialect == "harvest-json":
        return int(answer_json["payment"]["id"])
    if dialect == "invoiless":
        return int(answer_json["id"])
    return int(answer_json["_id"], 16)


def assert_server_owned(stored: dict[str, Any], invoice: int, dialect: str) -> None:
    assert stored["id"] != EVIL
    assert (stored["tenant"], stored["invoice_id"]) == ("acme", invoice)
    created = datetime.fromisoformat(stored["created_at"])
    assert abs(created.timestamp() - time.time()) < 300, "created now, not when the body said"
    if dialect.startswith("harvest"):
        assert (stored["recorded_by"], stored["recorded_by_email"]) == (
            "Owner",
            "acme@example.com",
        )
    if dialect == "urlkey":
        assert stored["client_app"] == "acme-app"
    assert Decimal(stored["amount"]) == Decimal("10.00")


@pytest.mark.parametrize("dialect", ["harvest", "harvest-json", "fastbill", "invoiless", "urlkey"])
async def test_server_owned_fields_in_a_create_change_nothing(
    catalogue: Catalogue, http: aiohttp.ClientSession, dialect: str
) -> None:
    invoice = await new_invoice(http, catalogue.url)
    other = await new_invoice(http, catalogue.url, tenant="globex")
    other_before = await ledger(http, catalogue.url, other)
    path, content_type, body = bodies(dialect, invoice, other)
    auth = credentials(dialect.removesuffix("-json"))

    answer = await send(http, catalogue.url, "POST", path,
                        headers={**auth, "Content-Type": content_type}, body=body)  # fmt: skip

    assert answer.status == 201, answer.body
    document = answer.json() if "json" in answer.content_type else None
    number = created_id(dialect, document, answer.body)
    stored = await admin(http, catalogue.url, "GET", f"/gateway/v1/payments/{number}")
    assert_server_owned(stored, invoice, dialect)
    due, _, payments = (await ledger(http, catalogue.url, invoice))[0]
    assert (due, [p["id"] for p in payments]) == ("990.00", [number])
    assert await ledger(http, catalogue.url, other) == other_before
    if dialect == "urlkey":
        assert document is not None
        assert (document["isRemoved"], document["isApproved"]) == (False, True)
        assert (document["appId"], document["business"]) == ("acme-app", business_id("acme"))


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
async def test_server_owned_fields_in_an_update_change_nothing(
    catalogue: Catalogue, http: aiohttp.ClientSession, method: str
) -> None:
    invoice = await new_invoice(http, catalogue.url)
    other = await new_invoice(http, catalogue.url, tenant="acme")
    number = await pay(http, catalogue.url, invoice, "10.00")
    before = await admin(http, catalogue.url, "GET", f"/gateway/v1/payments/{number}")
    other_before = await ledger(http, catalogue.url, other)
    body = (f'{{"amount": 20, "method": "Cash", "id": "{EVIL}", "invoice": "{other}",'
            ' "tenant": "globex"}')  # fmt: skip
    headers = {**credentials("invoiless"), "Content-Type": "application/json"}

    answer = await send(http, catalogue.url, method, f"/v1/payments/{number}", headers=headers,
                        body=body)  # fmt: skip

    assert answer.status == 200, answer.body
    assert (answer.json()["id"], answer.json()["invoice"]) == (str(number), str(invoice))
    stored = await admin(http, catalogue.url, "GET", f"/gateway/v1/payments/{number}")
    assert Decimal(stored["amount"]) == Decimal("20.00")
    owned = ("id", "tenant", "invoice_id", "created_at", "recorded_by", "client_app")
    assert {k: stored[k] for k in owned} == {k: before[k] for k in owned}
    assert (await ledger(http, catalogue.url, invoice))[0][0] == "980.00"
    assert await ledger(http, catalogue.url, other) == other_before
