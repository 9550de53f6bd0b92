"""Xero Accounting Payments: XML by default, JSON on request, UUID ids, Microsoft JSON dates.

A payment is one `Payment` object whose invoice and deposit account are nested
objects (`Invoice.InvoiceID`, `Account.Code`); the field table names them by dotted
path. Answers are wrapped in Xero's envelope (`Id`, `Status`, `ProviderName`,
`DateTimeUTC`, `Payments`); requests may be a bare payment or that envelope.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from lxml import etree

from . import _json, _values, _xml
from .base import Decoded, Dialect, Format, Kind, Reply, Spec, WireId, require_mapping
from .errors import BadRequest, GatewayError, NotPayable, Overpayment
from .model import Payment

PROVIDER = "Invoice payments gateway"
# Xero's own words for the refusals its clients look for.
OVERPAYMENT = "Payment amount exceeds the amount outstanding on this document"
NOT_PAYABLE = "Payments can only be made against Authorised documents"
NOT_FOUND = b"The resource you're looking for cannot be found"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_MS_DATE = re.compile(r"/Date\((?P<ms>-?[0-9]{1,15})(?P<offset>[+-][0-9]{4})?\)/")
_MAX_ID = 2**63 - 1
_XSI = "http://www.w3.org/2001/XMLSchema-instance"
_NAMESPACES = {"xsd": "http://www.w3.org/2001/XMLSchema", "xsi": _XSI}

# When documents are written (the envelope's DateTimeUTC): a clock tests may fix.
NOW: ContextVar[Callable[[], datetime]] = ContextVar("xero_now", default=lambda: datetime.now(UTC))

# Problem types of Xero's ApiException by error kind: (ErrorNumber, Type).
_EXCEPTIONS: dict[str, tuple[int, str]] = {
    "validation": (10, "ValidationException"),
    "ledger": (10, "ValidationException"),
    "bad_request": (11, "PostDataInvalidException"),
    "not_supported": (20, "ApiMethodNotImplementedException"),
}
# Titles of the problem documents Xero answers 401, 403 and 429 with.
_PROBLEMS = {401: "Unauthorized", 403: "Forbidden", 429: "Too Many Requests"}


@dataclass(frozen=True)
class Page:
    """The `pagination` block of a paged list."""

    page: int
    page_size: int
    page_count: int
    item_count: int


def ms_date(moment: datetime) -> str:
    """`/Date(1552348800000+0000)/`: milliseconds since the epoch, in UTC."""
    delta = moment.astimezone(UTC) - _EPOCH
    return f"/Date({delta // timedelta(milliseconds=1)}+0000)/"


def parse_moment(value: object) -> datetime:
    """An instant from a Microsoft JSON date or an ISO date or datetime (no zone: UTC)."""
    if isinstance(value, str):
        match = _MS_DATE.fullmatch(value)
        if match is not None:
            try:
                return _EPOCH + timedelta(milliseconds=int(match["ms"]))
            except OverflowError as exc:
                raise _values.ValueProblem("is not a valid date") from exc
    return _values.parse_datetime(value)


def xml_moment(moment: datetime) -> str:
    """`2008-09-18T12:10:55.937`: Xero's XML datetimes, UTC without a zone."""
    naive = moment.astimezone(UTC).replace(tzinfo=None)
    if naive.microsecond:
        return naive.isoformat(timespec="milliseconds")
    return naive.isoformat(timespec="seconds")


def _has_account(payment: Payment) -> bool:
    return payment.account_code is not None or payment.account_id is not None


def _const(value: object) -> Callable[[Any], object]:
    return lambda payment: value


class Xero(Dialect):
    name = "xero"
    formats = ("xml", "json")
    root = "Payment"
    list_root = "Payments"
    fields = (
        Spec("PaymentID", "id", Kind.ID, writable=False),
        Spec("Date", "paid_at", Kind.DATE),
        Spec("BankAmount", "bank_amount", Kind.CONST, value=lambda p: p.amount),
        Spec("Amount", "amount", Kind.AMOUNT),
        Spec("CurrencyRate", "currency_rate", Kind.CONST, value=_const(Decimal("1.000000"))),
        Spec("Reference", "notes", Kind.TEXT),
        Spec("PaymentType", "payment_type", Kind.CONST, value=_const("ACCRECPAYMENT")),
        Spec("Status", "status", Kind.CONST, value=_const("AUTHORISED")),
        Spec("UpdatedDateUTC", "updated_at", Kind.DATETIME, writable=False),
        Spec("HasAccount", "has_account", Kind.CONST, value=_has_account),
        Spec("IsReconciled", "reconciled", Kind.CONST, value=_const(False)),
        Spec("Account.AccountID", "account_id", Kind.TEXT),
        Spec("Account.Code", "account_code", Kind.TEXT),
        Spec("Invoice.Type", "invoice_type", Kind.CONST, value=_const("ACCREC")),
        Spec("Invoice.InvoiceID", "invoice_id", Kind.INVOICE_ID),
        Spec("Invoice.InvoiceNumber", "invoice_number", Kind.TEXT),
        Spec("HasValidationErrors", "has_errors", Kind.CONST, value=_const(False)),
    )
    required = frozenset({"amount"})
    statuses = {"validation": 400, "ledger": 400}

    # --- ids: UUIDs whose 128-bit value is the canonical id ------------------------------

    def wire_id(self, number: int) -> WireId:
        return str(uuid.UUID(int=number))

    def parse_id(self, text: object) -> int | None:
        if not isinstance(text, str) or not _UUID.fullmatch(text):
            return None
        number = uuid.UUID(text).int
        return number if 0 < number <= _MAX_ID else None

    # --- values ----------------------------------------------------------------------------

    def read(self, spec: Spec, value: Any) -> Any:
        if value is not None and spec.kind in (Kind.DATE, Kind.DATETIME):
            moment = parse_moment(value)
            if spec.kind is Kind.DATE:
                return datetime.combine(moment.date(), datetime.min.time(), UTC)
            return moment
        if value is not None and spec.attr == "account_id":
            if not isinstance(value, str) or not _UUID.fullmatch(value):
                raise _values.ValueProblem("is not a valid AccountID")
            return value.lower()
        return super().read(spec, value)

    def number(self, amount: Decimal) -> object:
        return amount.quantize(_values.CENT)

    def native(self, spec: Spec, payment: Payment, fmt: Format, warnings: list[str] | None) -> Any:
        """One field's value as Xero writes it in `fmt`: dates by format, money with cents."""
        if spec.kind in (Kind.DATE, Kind.DATETIME):
            moment = getattr(payment, spec.attr)
            if moment is None:
                return None
            return ms_date(moment) if fmt == "json" else xml_moment(moment)
        value = self.value(spec, payment, warnings)
        if isinstance(value, Decimal) and spec.attr != "currency_rate":
            return value.quantize(_values.CENT)
        return value

    # --- decoding ----------------------------------------------------------------------------

    def payment_fields(self, body: bytes, fmt: Format) -> Mapping[str, Any]:
        items = self._items(body, fmt)
        if len(items) != 1:
            raise BadRequest(f"Expected one payment, got {len(items)}")
        return items[0]

    def decode_list(self, body: bytes, fmt: Format, *, foreign_ids: bool = False) -> list[Decoded]:
        return [
            self.decode_fields(item, foreign_ids=foreign_ids) for item in self._items(body, fmt)
        ]

    def decode_status(self, body: bytes, fmt: Format) -> str | None:
        """The `Status` a delete request sends (`{"Status": "DELETED"}`, bare or wrapped)."""
        status = self.payment_fields(body, fmt).get("Status")
        return status if isinstance(status, str) else None

    def _items(self, body: bytes, fmt: Format) -> list[dict[str, Any]]:
        """The payments of a document: a bare payment, a `Payments` list or a response."""
        if fmt == "json":
            document = require_mapping(_json.loads(body), "a payment")
            if "Payments" not in document:
                return [_flatten(document)]
            listed = document["Payments"]
            if not isinstance(listed, list):
                raise BadRequest("Payments must be a list")
            return [_flatten(require_mapping(item, "a payment")) for item in listed]
        root = _xml.parse(body)
        tag = _xml.local(str(root.tag))
        if tag == "Response":
            root = _child(root, "Payments")
            tag = "Payments"
        if tag == "Payment":
            return [_xml_fields(root)]
        if tag != "Payments":
            raise BadRequest(f"Expected a <Payment> or <Payments> document, got <{root.tag}>")
        items = []
        for child in root:
            if _xml.local(str(child.tag)) != "Payment":
                raise BadRequest(f"Unexpected <{child.tag}> in <Payments>")
            items.append(_xml_fields(child))
        return items

    # --- encoding ------------------------------------------------------------------------------

    def payment_object(
        self, payment: Payment, fmt: Format, warnings: list[str] | None, status: str | None = None
    ) -> dict[str, Any]:
        """A payment as nested mappings in table order; absent values are left out."""
        document: dict[str, Any] = {}
        for spec in self.shown:
            value = self.native(spec, payment, fmt, warnings)
            if spec.attr == "status" and status is not None:
                value = status
            if value is None:
                continue
            *parents, leaf = spec.wire.split(".")
            target = document
            for parent in parents:
                target = target.setdefault(parent, {})
            target[leaf] = value
        return document

    def encode_payment(
        self, payment: Payment, fmt: Format, warnings: list[str] | None = None
    ) -> bytes:
        return self.encode_page([payment], fmt, warnings=warnings)

    def encode_payments(
        self, payments: Sequence[Payment], fmt: Format, warnings: list[str] | None = None
    ) -> bytes:
        return self.encode_page(payments, fmt, warnings=warnings)

    def encode_deleted(self, payment: Payment, fmt: Format) -> bytes:
        """The answer to a delete: the payment echoed with `Status` DELETED."""
        return self.encode_page([payment], fmt, status="DELETED")

    def encode_page(
        self,
        payments: Sequence[Payment],
        fmt: Format,
        page: Page | None = None,
        *,
        warnings: list[str] | None = None,
        status: str | None = None,
    ) -> bytes:
        """Xero's response envelope around `payments`, with a `pagination` block if paged."""
        items = [self.payment_object(p, fmt, warnings, status) for p in payments]
        moment = NOW.get()()
        digest = hashlib.sha256(repr((moment, items)).encode()).digest()
        envelope: dict[str, Any] = {
            "Id": str(uuid.UUID(bytes=digest[:16], version=4)),
            "Status": "OK",
            "ProviderName": PROVIDER,
            "DateTimeUTC": ms_date(moment).replace("+0000", "")
            if fmt == "json"
            else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        if page is not None:
            envelope["pagination"] = {
                "page": page.page,
                "pageSize": page.page_size,
                "pageCount": page.page_count,
                "itemCount": page.item_count,
            }
        if fmt == "json":
            return _json.dumps({**envelope, "Payments": items})
        root = _element("Response", envelope, namespaces=True)
        listed = etree.SubElement(root, "Payments")
        for item in items:
            listed.append(_element("Payment", item))
        return _serialise(root)

    def encode_request(
        self, fields: Mapping[str, Any], fmt: Format, warnings: list[str] | None = None
    ) -> bytes:
        document: dict[str, Any] = {}
        for spec, value in self.request_rows(fields, warnings):
            if spec.kind is Kind.DATE:
                value = fields[spec.attr].date().isoformat()
            elif isinstance(value, Decimal):
                value = value.quantize(_values.CENT)
            *parents, leaf = spec.wire.split(".")
            target = document
            for parent in parents:
                target = target.setdefault(parent, {})
            target[leaf] = value
        if fmt == "json":
            return _json.dumps(document)
        return _serialise(_element("Payment", document))

    # --- errors ---------------------------------------------------------------------------

    def messages(self, error: GatewayError) -> list[str]:
        """The validation messages Xero would write for `error`."""
        if isinstance(error, Overpayment):
            return [OVERPAYMENT]
        if isinstance(error, NotPayable):
            return [NOT_PAYABLE]
        if not error.fields:
            return [error.message]
        return [f"{self.wire_name(attr)} {problem}" for attr, problem in error.fields.items()]

    def encode_error(self, error: GatewayError, fmt: Format) -> Reply:
        status = self.status_of(error)
        headers = error.headers()
        if status == 404:
            headers["Content-Type"] = "text/html; charset=utf-8"
            return Reply(404, NOT_FOUND, headers)
        if status in _PROBLEMS:
            if status == 429:
                headers["X-Rate-Limit-Problem"] = "minute"
            headers["Content-Type"] = "application/json; charset=utf-8"
            return Reply(status, _json.dumps(_problem(status, error.message)), headers)
        number, kind = _EXCEPTIONS.get(error.kind, (status, "ApiException"))
        messages = self.messages(error)
        if kind == "ValidationException":
            document = {
                "ErrorNumber": number,
                "Type": kind,
                "Message": "A validation exception occurred",
                "Elements": [
                    {
                        "ValidationErrors": [{"Message": message} for message in messages],
                        "HasValidationErrors": True,
                    }
                ],
            }
        else:
            document = {"ErrorNumber": number, "Type": kind, "Message": "; ".join(messages)}
        if fmt == "json":
            return Reply(status, _json.dumps(document), headers)
        return Reply(status, _api_exception(document), headers)

    def error_details(self, body: bytes, fmt: Format) -> tuple[str, dict[str, str]]:
        """Xero's error messages: the validation messages if any, else the summary."""
        try:
            found = list(_json_messages(_json.loads(body)) if fmt == "json" else [])
        except BadRequest:
            found = []
        if fmt == "xml":
            root = _xml.parse(body)
            found = [e.text or "" for e in root.iter() if _xml.local(str(e.tag)) == "Message"]
            found = found[1:] or found
        message = "; ".join(m for m in found if m) or "Request refused"
        fields = {"Amount": "exceeds the amount outstanding"} if OVERPAYMENT in found else {}
        return message, fields


# --- helpers ------------------------------------------------------------------------------------


def _flatten(document: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects as dotted keys: `{"Invoice": {"InvoiceID": x}}` -> `Invoice.InvoiceID`."""
    flat: dict[str, Any] = {}
    for key, value in document.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _xml_fields(element: etree._Element, prefix: str = "") -> dict[str, Any]:
    """An XML payment's leaves as dotted keys; `xsi:nil` reads as None."""
    flat: dict[str, Any] = {}
    for child in element:
        key = f"{prefix}{_xml.local(str(child.tag))}"
        if len(child):
            flat.update(_xml_fields(child, f"{key}."))
            continue
        if key in flat:
            raise BadRequest(f"Element <{child.tag}> appears twice")
        nil = child.get(f"{{{_XSI}}}nil") == "true"
        flat[key] = None if nil else (child.text or "")
    return flat


def _child(root: etree._Element, name: str) -> etree._Element:
    for child in root:
        if _xml.local(str(child.tag)) == name:
            return child
    raise BadRequest(f"Expected <{name}> in <{root.tag}>")


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _element(name: str, document: Mapping[str, Any], *, namespaces: bool = False) -> Any:
    root = etree.Element(name, nsmap=_NAMESPACES if namespaces else None)
    _fill(root, document)
    return root


def _fill(parent: Any, document: Mapping[str, Any]) -> None:
    for key, value in document.items():
        child = etree.SubElement(parent, key)
        if isinstance(value, dict):
            _fill(child, value)
        else:
            child.text = _text(value)


def _serialise(root: Any) -> bytes:
    return _xml.DECLARATION + bytes(etree.tostring(root, encoding="UTF-8", xml_declaration=False))


def _problem(status: int, detail: str) -> dict[str, Any]:
    """The problem document of Xero's identity layer (401, 403, 429)."""
    return {
        "Type": None,
        "Title": _PROBLEMS[status],
        "Status": status,
        "Detail": detail,
        "Instance": str(uuid.uuid4()),
        "Extensions": {},
    }


def _api_exception(document: Mapping[str, Any]) -> bytes:
    """`<ApiException>`, Xero's XML error, validation messages in `<Elements>`."""
    root = etree.Element("ApiException", nsmap=_NAMESPACES)
    for key in ("ErrorNumber", "Type", "Message"):
        etree.SubElement(root, key).text = str(document[key])
    if "Elements" in document:
        elements = etree.SubElement(root, "Elements")
        for item in document["Elements"]:
            element = etree.SubElement(elements, "DataContractBase")
            element.set(f"{{{_XSI}}}type", "Payment")
            errors = etree.SubElement(element, "ValidationErrors")
            for problem in item["ValidationErrors"]:
                error = etree.SubElement(errors, "ValidationError")
                etree.SubElement(error, "Message").text = problem["Message"]
    return _serialise(root)


def _json_messages(document: Any) -> Iterator[str]:
    if not isinstance(document, dict):
        return
    elements = document.get("Elements")
    found = False
    for element in elements if isinstance(elements, list) else []:
        problems = element.get("ValidationErrors") if isinstance(element, dict) else None
        for problem in problems if isinstance(problems, list) else []:
            if isinstance(problem, dict) and isinstance(problem.get("Message"), str):
                found = True
                yield problem["Message"]
    if not found:
        for key in ("Message", "Detail", "detail"):
            if isinstance(document.get(key), str):
                yield document[key]
                return
