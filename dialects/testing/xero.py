"""Xero's test client and samples: UUID ids, XML creates, JSON lists, Xero's error shapes.

Test clients present tokens they sign themselves (ES256, the key urlKey's tests use):
the token endpoint is exercised by Xero's own tests, while the suites need credentials
without a round trip.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

import jwt

from ..auth import basic_header
from ..xero import API, NOT_FOUND
from . import Answer, Request, Support, View
from .urlkey import APP_KEY, APP_PUBLIC_PEM

PAYMENTS = API + "/Payments"
PROBLEM_TITLES = {401: "Unauthorized", 403: "Forbidden", 429: "Too Many Requests"}


def tenant_id(tenant: str) -> str:
    """The organisation id (`xero-tenant-id`) a tenant has in the suites."""
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{tenant}.example.com"))


def client_token(client_id: str, *, lifetime: int = 3600) -> str:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": "xero", "iat": now, "exp": now + lifetime}
    return jwt.encode(claims, APP_KEY, algorithm="ES256")


class XeroSupport(Support):
    name = "xero"
    create_status = 200
    deleted_empty = False
    lists_by_search = True
    # The invoice is named in the body: Xero refuses it as a validation error.
    unknown_invoice = (400, "validation")
    list_path = PAYMENTS
    payment_path = PAYMENTS + "/{payment}"
    content_type = "application/xml"
    json_headers = {"Accept": "application/json"}

    def section(self, tenant: str) -> dict[str, Any]:
        client = {
            "client_id": f"{tenant}-xero-client",
            "secret": f"{tenant}-xero-secret",
            "public_key": APP_PUBLIC_PEM,
        }
        return {"tenant_id": tenant_id(tenant), "tenant_name": tenant.capitalize(),
                "clients": [client]}  # fmt: skip

    def hashed(self, section: dict[str, Any], hash: Callable[[str], str]) -> dict[str, Any]:
        clients = [{**c, "secret": hash(c["secret"])} for c in section["clients"]]
        return {**section, "clients": clients}

    def backend(self, tenant: str) -> dict[str, Any]:
        return {"client_id": f"{tenant}-xero-client", "client_secret": f"{tenant}-xero-secret",
                "tenant_id": tenant_id(tenant)}  # fmt: skip

    def recorded(self, tenant: str) -> tuple[str, str | None]:
        return (f"{tenant}-xero-client", f"{tenant}-xero-client")

    def credentials(self, tenant: str) -> dict[str, str]:
        token = client_token(f"{tenant}-xero-client")
        return {"Authorization": f"Bearer {token}", "xero-tenant-id": tenant_id(tenant)}

    def login(self, name: str, secret: str) -> Request:
        headers = {
            **basic_header(name, secret),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        return Request("POST", "/connect/token", b"grant_type=client_credentials", headers)

    def fields(self, invoice: int, paid_on: str, notes: str | None) -> dict[str, Any]:
        """A JSON create's members: the invoice and account as nested objects, as Xero's are."""
        data: dict[str, Any] = {
            "Invoice": {"InvoiceID": self.wire_id(invoice)},
            "Account": {"Code": "090"},
            "Date": f"{paid_on}T00:00:00",
        }
        return data if notes is None else {**data, "Reference": notes}

    def create(
        self,
        tenant: str,
        invoice: int,
        amount: str,
        *,
        paid_on: str = "2026-11-20",
        notes: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> Request:
        parts = [
            f"<Invoice><InvoiceID>{self.wire_id(invoice)}</InvoiceID></Invoice>",
            "<Account><Code>090</Code></Account>",
            f"<Date>{paid_on}T00:00:00</Date><Amount>{amount}</Amount>",
        ]
        if notes is not None:
            parts.append(f"<Reference>{escape(notes)}</Reference>")
        parts += [f"<{k}>{escape(v)}</{k}>" for k, v in (extra or {}).items()]
        body = f"<Payment>{''.join(parts)}</Payment>".encode()
        return Request("POST", PAYMENTS, body, {"Content-Type": self.content_type})

    def batch(self, bodies: list[bytes]) -> bytes | None:
        return b"<Payments>" + b"".join(bodies) + b"</Payments>"

    def listing(self, tenant: str, invoice: int) -> Request:
        # Xero lists deleted payments too, marked: an invoice's live ones are AUTHORISED.
        on_invoice = f'Invoice.InvoiceID==guid("{self.wire_id(invoice)}")'
        where = quote(f'{on_invoice} AND Status=="AUTHORISED"')
        return Request("GET", f"{PAYMENTS}?where={where}", None, {"Accept": "application/json"})

    def delete(self, tenant: str, invoice: int, payment: int) -> Request | None:
        body = b"<Payment><Status>DELETED</Status></Payment>"
        path = f"{PAYMENTS}/{self.wire_id(payment)}"
        return Request("POST", path, body, {"Content-Type": "application/xml"})

    def location(self, invoice: int, payment: int) -> str | None:
        return None  # Xero answers a create with the payment, not with a Location

    def view(self, body: bytes) -> View:
        return self.views(body)[0]

    def views(self, body: bytes) -> list[View]:
        answer = Answer(200, {}, body)
        if body.lstrip().startswith(b"<"):
            root = answer.xml()
            assert root.tag == "Response" and root.findtext("Status") == "OK"
            return [_xml_view(item) for item in root.iterfind("Payments/Payment")]
        document = answer.json()
        assert document["Status"] == "OK"
        return [_json_view(item) for item in document["Payments"]]

    def error(self, answer: Answer, status: int, kind: str, fmt: str | None = None) -> str:
        """Xero's shapes: plain-text 404, problem documents, ApiException / its JSON twin."""
        assert answer.status == status, (answer.status, answer.body[:500])
        content_type = answer.header("Content-Type") or ""
        if status == 404:
            assert content_type == "text/html; charset=utf-8", answer.headers
            assert answer.body == NOT_FOUND
            return answer.body.decode()
        if status in PROBLEM_TITLES:
            assert content_type.startswith("application/json"), answer.headers
            problem = answer.json()
            assert (problem["Title"], problem["Status"]) == (PROBLEM_TITLES[status], status)
            return str(problem["Detail"])
        if (fmt or "xml") == "xml":
            root = answer.xml()
            assert root.tag == "ApiException", answer.body[:200]
            number, kind_name = root.findtext("ErrorNumber"), root.findtext("Type") or ""
            messages = [e.text or "" for e in root.iter("Message")]
        else:
            document = answer.json()
            number, kind_name = str(document["ErrorNumber"]), document["Type"]
            messages = [document["Message"]] + [
                problem["Message"]
                for element in document.get("Elements", [])
                for problem in element["ValidationErrors"]
            ]
        assert number is not None and number.isdigit() and kind_name.endswith("Exception")
        if kind in ("validation", "ledger"):
            assert kind_name == "ValidationException", kind_name
        return "; ".join(messages)


def _json_view(item: dict[str, Any]) -> View:
    milliseconds = int(item["Date"].removeprefix("/Date(").split("+")[0].rstrip(")/"))
    paid = datetime.fromtimestamp(milliseconds / 1000, UTC)
    return {
        "id": uuid.UUID(item["PaymentID"]).int,
        "amount": Decimal(str(item["Amount"])),
        "notes": item.get("Reference"),
        "paid_on": paid.date().isoformat(),
    }


def _xml_view(item: Any) -> View:
    return {
        "id": uuid.UUID(item.findtext("PaymentID")).int,
        "amount": Decimal(item.findtext("Amount")),
        "notes": item.findtext("Reference"),
        "paid_on": (item.findtext("Date") or "")[:10],
    }


SUPPORT = XeroSupport()
