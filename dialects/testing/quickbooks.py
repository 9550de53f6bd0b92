"""QuickBooks Online's test client and samples: JSON Payments, a realm id in the path,
Fault envelopes.

Test apps present tokens they sign themselves (ES256, the key urlKey's tests use); the
token endpoint is exercised by QuickBooks' own tests. A payment's Id is its group id,
which for a payment on one invoice is the allocation's own id.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode
from xml.sax.saxutils import escape

import jwt

from ..auth import basic_header
from ..quickbooks import NAMESPACE, TOKEN_PATH
from . import Answer, Request, Support, View
from .urlkey import APP_KEY, APP_PUBLIC_PEM

CUSTOMER = "58"
# The kinds QuickBooks answers 400 whatever their canonical status (its validation faults).
_FAULTS_400 = frozenset({"validation", "ledger", "unapplied", "customer_mismatch",
                         "split_unsupported", "stale_version", "not_supported"})  # fmt: skip
# Canonical error kind -> the Fault codes it may be answered with.
_CODES: dict[str, set[str]] = {
    "not_found": {"610", "500"},
    "validation": {"2010", "2020", "6000"},
    "ledger": {"6000"},
    "bad_request": {"2010", "4000", "4001"},
    "bad_query": {"4000", "4001"},
    "key_reused": {"600"},
    "conflict": {"600", "5010"},
    "stale_version": {"5010"},
    "not_supported": {"500"},
}


def realm_id(tenant: str) -> str:
    """The realm id a tenant has in the suites: digits derived from its name."""
    return str(int.from_bytes(hashlib.sha256(tenant.encode()).digest()[:6], "big") % 10**12 + 1)


def app_token(client_id: str, *, lifetime: int = 3600) -> str:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": "quickbooks", "iat": now,
              "exp": now + lifetime}  # fmt: skip
    return jwt.encode(claims, APP_KEY, algorithm="ES256")


class QuickBooksSupport(Support):
    name = "quickbooks"
    create_status = 200
    deleted_empty = False
    lists_by_search = True
    unknown_invoice = (404, "not_found")
    page_limit = 1000  # MAXRESULTS: QuickBooks' clients page with STARTPOSITION
    list_path = "/v3/company/{realm}/query"
    create_path = "/v3/company/{realm}/payment"
    payment_path = "/v3/company/{realm}/payment/{payment}"
    content_type = "application/xml"

    def _path(self, template: str, tenant: str, invoice: int, payment: int = 0) -> str:
        return template.format(
            realm=realm_id(tenant), invoice=self.wire_id(invoice), payment=self.wire_id(payment)
        )

    # --- configuration -------------------------------------------------------------------

    def section(self, tenant: str) -> dict[str, Any]:
        client = {
            "client_id": f"{tenant}-quickbooks-client",
            "secret": f"{tenant}-quickbooks-secret",
            "refresh_token": f"{tenant}-quickbooks-refresh",
            "public_key": APP_PUBLIC_PEM,
        }
        return {"realm_id": realm_id(tenant), "clients": [client]}

    def hashed(self, section: dict[str, Any], hash: Callable[[str], str]) -> dict[str, Any]:
        clients = [{**c, "secret": hash(c["secret"])} for c in section["clients"]]
        return {**section, "clients": clients}

    def backend(self, tenant: str) -> dict[str, Any]:
        return {
            "client_id": f"{tenant}-quickbooks-client",
            "client_secret": f"{tenant}-quickbooks-secret",
            "refresh_token": f"{tenant}-quickbooks-refresh",
            "realm_id": realm_id(tenant),
            "customer": CUSTOMER,
        }

    def recorded(self, tenant: str) -> tuple[str, str | None]:
        return (f"{tenant}-quickbooks-client", f"{tenant}-quickbooks-client")

    # --- a caller --------------------------------------------------------------------------

    def credentials(self, tenant: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {app_token(f'{tenant}-quickbooks-client')}"}

    def login(self, name: str, secret: str) -> Request:
        tenant = name.removesuffix("-quickbooks-client")
        form = {"grant_type": "refresh_token", "refresh_token": f"{tenant}-quickbooks-refresh"}
        headers = {
            **basic_header(name, secret),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        return Request("POST", TOKEN_PATH, urlencode(form).encode(), headers)

    def fields(self, invoice: int, paid_on: str, notes: str | None) -> dict[str, Any]:
        """A JSON create's members but TotalAmt: one line on the invoice, which applies the
        whole total (it names no Amount of its own)."""
        link = {"TxnId": self.wire_id(invoice), "TxnType": "Invoice"}
        data: dict[str, Any] = {
            "TxnDate": paid_on,
            "CustomerRef": {"value": CUSTOMER},
            "Line": [{"LinkedTxn": [link]}],
        }
        return data if notes is None else {**data, "PrivateNote": notes}

    def document(
        self, invoice: int, amount: str, paid_on: str, notes: str | None
    ) -> dict[str, Any]:
        return {**self.fields(invoice, paid_on, notes), "TotalAmt": Decimal(amount)}

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
        """An XML create, as QuickBooks' Java and .NET SDKs may send (answered in JSON,
        the default); `extra` adds elements as given."""
        parts = [f"<TxnDate>{paid_on}</TxnDate>"]
        if notes is not None:
            parts.append(f"<PrivateNote>{escape(notes)}</PrivateNote>")
        # One line without an Amount applies the whole TotalAmt (the amount appears once).
        parts.append(
            f"<Line><LinkedTxn><TxnId>{self.wire_id(invoice)}</TxnId>"
            "<TxnType>Invoice</TxnType></LinkedTxn></Line>"
        )
        parts.append(f"<CustomerRef>{CUSTOMER}</CustomerRef><TotalAmt>{amount}</TotalAmt>")
        parts += [f"<{k}>{escape(v)}</{k}>" for k, v in (extra or {}).items()]
        # No namespace: the suites edit the body by element name (QuickBooks' own namespace
        # is taken too, as QuickBooks' SDKs send it; see the dialect's own tests).
        body = f"<Payment>{''.join(parts)}</Payment>".encode()
        path = self._path(self.create_path, tenant, invoice)
        return Request("POST", path, body, {"Content-Type": self.content_type})

    def body(
        self, invoice: int, amount: str, paid_on: str, notes: str | None, extra: Mapping[str, str]
    ) -> bytes:
        data = self.document(invoice, amount, paid_on, notes)
        data.update({k: Decimal(v) for k, v in extra.items()})
        return _json(data)

    def json_create(
        self, tenant: str, invoice: int, amount: str, *, paid_on: str = "2026-11-20"
    ) -> Request:
        path = self._path(self.create_path, tenant, invoice)
        body = _json(self.document(invoice, amount, paid_on, None))
        return Request("POST", path, body, {"Content-Type": "application/json"})

    def listing(self, tenant: str, invoice: int) -> Request:
        statement = (
            f"SELECT * FROM Payment WHERE Line.LinkedTxn.TxnId = '{self.wire_id(invoice)}'"
            " MAXRESULTS 1000"
        )
        path = self._path(self.list_path, tenant, invoice)
        return Request("GET", f"{path}?query={quote(statement)}", None, {})

    def delete(self, tenant: str, invoice: int, payment: int) -> Request | None:
        body = json.dumps({"Id": self.wire_id(payment), "SyncToken": "0"}).encode()
        path = self._path(self.create_path, tenant, invoice) + "?operation=delete"
        return Request("POST", path, body, {"Content-Type": "application/json"})

    def location(self, invoice: int, payment: int) -> str | None:
        return None  # QuickBooks answers a create with the payment, not with a Location

    def view(self, body: bytes) -> View:
        return self.views(body)[0]

    def views(self, body: bytes) -> list[View]:
        """The payments of an answer: one (`Payment`) or a query's (`QueryResponse`)."""
        answer = Answer(200, {}, body)
        if body.lstrip().startswith(b"<"):
            root = answer.xml()
            assert root.tag == f"{{{NAMESPACE}}}IntuitResponse", root.tag
            return [_xml_view(item) for item in root.iter(f"{{{NAMESPACE}}}Payment")]
        document = answer.json()
        if "Payment" in document:
            return [_view(document["Payment"])]
        return [_view(item) for item in document["QueryResponse"].get("Payment", [])]

    def error(self, answer: Answer, status: int, kind: str, fmt: str | None = None) -> str:
        """A Fault (in XML or JSON), or the identity layer's lower-case envelope."""
        expected = {400} if kind in _FAULTS_400 else {status}
        if kind == "not_found":
            expected.add(400)  # a path it has no operation at: Unsupported Operation, 400
        assert answer.status in expected, (answer.status, status, answer.body[:500])
        if status in (401, 403, 429) and (fmt or "json") == "json":
            document = Answer(200, {}, answer.body).json()
            (error,) = document["fault"]["error"]
            assert error["code"] in ("3200", "3100", "3001"), error
            return str(error["detail"])
        if answer.body.lstrip().startswith(b"<"):
            root = answer.xml()
            ns = "{http://schema.intuit.com/finance/v3}"
            assert root.tag == f"{ns}IntuitResponse", root.tag
            error = root.find(f"{ns}Fault/{ns}Error")
            assert error is not None
            code, element = error.get("code") or "", error.get("element") or ""
            text = (error.findtext(f"{ns}Detail") or "") or (error.findtext(f"{ns}Message") or "")
        else:
            document = Answer(200, {}, answer.body).json()
            (error,) = document["Fault"]["Error"]
            code, text = error["code"], error.get("Detail") or error["Message"]
            element = error.get("element") or ""
            assert isinstance(code, str) and code.isdigit(), error
        if kind in _CODES:
            assert code in _CODES[kind], (kind, code, text)
        # The field a fault names is its `element`.
        return f"{text} [{element}]" if element else str(text)


def _json(data: Mapping[str, Any]) -> bytes:
    """JSON with Decimal values as exact numbers, nested ones too."""
    return json.dumps(data, default=_exact).replace('"\\u0000', "").replace('\\u0000"', "").encode()


def _exact(value: object) -> object:
    if isinstance(value, Decimal):
        return f"\x00{value}\x00"
    raise TypeError(type(value).__name__)


def _view(item: dict[str, Any]) -> View:
    return {
        "id": int(item["Id"]),
        "amount": Decimal(str(item["TotalAmt"])),
        "notes": item.get("PrivateNote"),
        "paid_on": item.get("TxnDate", ""),
    }


def _xml_view(item: Any) -> View:
    def text(name: str) -> str | None:
        found: str | None = item.findtext(f"{{{NAMESPACE}}}{name}")
        return found

    return {
        "id": int(text("Id") or 0),
        "amount": Decimal(text("TotalAmt") or "0"),
        "notes": text("PrivateNote"),
        "paid_on": text("TxnDate") or "",
    }


SUPPORT = QuickBooksSupport()
