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
from abc import abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from functools import cached_property, partial
from operator import attrgetter
from typing import Any, Literal
from urllib.parse import urlencode

from lxml import etree
from pydantic import Field, field_validator

from . import _json, _values, _xml, oauth, xero_query
from .auth import basic_header
from .base import (
    Batches,
    Codec,
    Decoded,
    Dialect,
    Kind,
    Removal,
    Reply,
    Spec,
    WireId,
    require_mapping,
)
from .errors import (
    BadQuery,
    BadRequest,
    GatewayError,
    NotPayable,
    Overpayment,
    TokenExpired,
    ValidationFailed,
)
from .model import NO_FACTS, Facts, InvoiceStatus, Page, Payment, PaymentQuery
from .unit import (
    BackendConfig,
    BearerAuth,
    ClientAuth,
    Credential,
    DialectUnit,
    Endpoint,
    EndpointCall,
    Op,
    Route,
    Section,
    Strict,
    TokenEndpoint,
    TokenGrant,
)

PROVIDER = "Invoice payments gateway"
# Xero's own words for the refusals its clients look for.
OVERPAYMENT = "Payment amount exceeds the amount outstanding on this document"
NOT_PAYABLE = "Payments can only be made against Authorised documents"
NOT_FOUND = b"The resource you're looking for cannot be found"
_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_MS_DATE = re.compile(r"/Date\((?P<ms>-?[0-9]{1,15})(?P<offset>[+-][0-9]{4})?\)/")
_MAX_ID = 2**63 - 1
_XSI = "http://www.w3.org/2001/XMLSchema-instance"
_NAMESPACES = {"xmlns:xsd": "http://www.w3.org/2001/XMLSchema", "xmlns:xsi": _XSI}

# When documents are written (the envelope's DateTimeUTC): a clock tests may fix.
NOW: ContextVar[Callable[[], datetime]] = ContextVar("xero_now", default=lambda: datetime.now(UTC))

# Problem types of Xero's ApiException by error kind: (ErrorNumber, Type).
_EXCEPTIONS: dict[str, tuple[int, str]] = {
    "validation": (10, "ValidationException"),
    "ledger": (10, "ValidationException"),
    "unapplied": (10, "ValidationException"),
    "customer_mismatch": (10, "ValidationException"),
    "split_unsupported": (10, "ValidationException"),
    "bad_request": (11, "PostDataInvalidException"),
    "bad_query": (16, "QueryParseException"),
    "not_supported": (20, "ApiMethodNotImplementedException"),
}
# Titles of the problem documents Xero answers 401, 403 and 429 with.
_PROBLEMS = {401: "Unauthorized", 403: "Forbidden", 429: "Too Many Requests"}


def ms_date(moment: datetime) -> str:
    """`/Date(1552348800000+0000)/`: milliseconds since the epoch, in UTC."""
    return f"/Date({_values.epoch_ms(moment)}+0000)/"


def parse_moment(value: object) -> datetime:
    """An instant from a Microsoft JSON date or an ISO date or datetime (no zone: UTC)."""
    if isinstance(value, str):
        match = _MS_DATE.fullmatch(value)
        if match is not None:
            text = match["ms"]
            milliseconds = _values.ascii_number(text.removeprefix("-"))
            assert milliseconds is not None  # the pattern took ASCII digits only
            return _values.from_epoch_ms(-milliseconds if text[0] == "-" else milliseconds)
    return _values.parse_datetime(value)


def xml_moment(moment: datetime) -> str:
    """`2008-09-18T12:10:55.937`: Xero's XML datetimes, UTC without a zone."""
    naive = moment.astimezone(UTC).replace(tzinfo=None)
    if naive.microsecond:
        return naive.isoformat(timespec="milliseconds")
    return naive.isoformat(timespec="seconds")


# An invoice's status as Xero names it: open, partly paid and overdue are all AUTHORISED.
_INVOICE_STATUSES = {
    InvoiceStatus.DRAFT: "DRAFT",
    InvoiceStatus.OPEN: "AUTHORISED",
    InvoiceStatus.PARTIAL: "AUTHORISED",
    InvoiceStatus.OVERDUE: "AUTHORISED",
    InvoiceStatus.PAID: "PAID",
    InvoiceStatus.VOID: "VOIDED",
}


def _has_account(payment: Payment) -> bool:
    return payment.account_code is not None or payment.account_id is not None


def _const(value: object) -> Callable[[Any], object]:
    return lambda payment: value


def _status(payment: Payment) -> str:
    """AUTHORISED, or DELETED once deleted: Xero keeps a deleted payment readable."""
    return "AUTHORISED" if payment.deleted_at is None else "DELETED"


class XeroSearch:
    """Op.SEARCH: Xero's `where`, `order`, `page` and `If-Modified-Since`, read against
    the payment's elements."""

    def __init__(self, xero: Xero) -> None:
        self.xero = xero

    def read_query(self, query: Mapping[str, str]) -> PaymentQuery:
        return xero_query.read(query, self.xero.parse_id, self.xero.elements)

    def read_search(self, query: Mapping[str, str], headers: Mapping[str, str]) -> PaymentQuery:
        since = xero_query.modified_since(headers.get("If-Modified-Since"))
        return xero_query.read(query, self.xero.parse_id, self.xero.elements, since)


class XeroCodec(Codec):
    """Xero's documents in one format: the envelope, batches, removals and errors are
    built as nested mappings here; `XeroXml` and `XeroJson` read and write them."""

    dialect: Xero

    def __init__(self, dialect: Dialect) -> None:
        super().__init__(dialect)
        self.batches: Batches | None = self
        self.removal: Removal | None = self

    # --- what differs by format ------------------------------------------------------------

    @abstractmethod
    def moment(self, moment: datetime) -> str:
        """A payment's date or time as this format writes it."""

    @abstractmethod
    def stamp(self, moment: datetime) -> str:
        """The envelope's `DateTimeUTC` as this format writes it."""

    @abstractmethod
    def items(self, body: bytes) -> list[dict[str, Any]]:
        """The payments of a document: a bare payment, a `Payments` list or a response."""

    @abstractmethod
    def write(self, name: str, document: Mapping[str, Any]) -> bytes:
        """One document (a request, a removal) whose root is `name`."""

    @abstractmethod
    def write_envelope(
        self, envelope: dict[str, Any], items: list[dict[str, Any]], listed_as: tuple[str, str]
    ) -> bytes:
        """The response envelope around `items`, listed as (plural, singular)."""

    @abstractmethod
    def write_exception(self, document: Mapping[str, Any]) -> bytes:
        """Xero's ApiException."""

    # --- reading -------------------------------------------------------------------------------

    def payment_fields(self, body: bytes) -> Mapping[str, Any]:
        found = self.items(body)
        if len(found) != 1:
            raise BadRequest(f"Expected one payment, got {len(found)}")
        return found[0]

    def list_items(self, body: bytes) -> list[Mapping[str, Any]]:
        return list(self.items(body))

    def decode_items(self, body: bytes) -> list[Decoded | GatewayError]:
        found: list[Decoded | GatewayError] = []
        for item in self.items(body):
            try:
                found.append(replace(self.dialect.decode_fields(item), sent=item))
            except ValidationFailed as refused:
                refused.sent = item
                found.append(refused)
        return found

    def read_removal(self, body: bytes) -> None:
        """A delete is `{"Status": "DELETED"}` (bare or wrapped); a payment is never edited."""
        if self.payment_fields(body).get("Status") != "DELETED":
            raise ValidationFailed(
                "A payment cannot be edited, only deleted",
                fields={"status": 'must be "DELETED": a payment is never edited'},
            )

    def removal_request(self) -> bytes:
        return self.write("Payment", {"Status": "DELETED"})

    # --- writing -------------------------------------------------------------------------------

    def native(self, spec: Spec, payment: Payment, warnings: list[str] | None) -> Any:
        """One field's value as Xero writes it in this format: dates by format, money with cents."""
        if spec.kind in (Kind.DATE, Kind.DATETIME):
            moment = getattr(payment, spec.attr)
            if moment is None:
                return None
            return self.moment(moment)
        value = self.dialect.value(spec, payment, warnings)
        if isinstance(value, Decimal) and spec.attr != "currency_rate":
            return value.quantize(_values.CENT)
        return value

    def payment_object(
        self,
        payment: Payment,
        warnings: list[str] | None,
        status: str | None = None,
        facts: Facts = NO_FACTS,
    ) -> dict[str, Any]:
        """A payment as nested mappings in table order; absent values are left out.
        The invoice's summary and the account's name come from `facts`, where known."""
        document: dict[str, Any] = {}
        for spec in self.dialect.shown:
            value = self.native(spec, payment, warnings)
            if spec.attr == "status" and status is not None:
                value = status
            if value is None:
                continue
            *parents, leaf = spec.wire.split(".")
            target = document
            for parent in parents:
                target = target.setdefault(parent, {})
            target[leaf] = value
        invoice = facts.invoices.get(payment.invoice_id or 0)
        if invoice is not None:
            document["Invoice"].update(
                InvoiceNumber=invoice.number,
                AmountDue=invoice.due.quantize(_values.CENT),
                Status=_INVOICE_STATUSES[invoice.status],
                CurrencyCode=invoice.currency,
            )
        name = facts.account_names.get(payment.account_code or "")
        if name and "Account" in document:
            document["Account"]["Name"] = name
        group = facts.groups.get(payment.group_id or 0)
        if group is not None and group.allocations > 1 and payment.group_id is not None:
            # One allocation of a payment split across invoices: Xero's word for a payment
            # that settles several invoices at once is a batch payment.
            batch = self.dialect.wire_id(payment.group_id)
            document["BatchPaymentID"] = batch
            document["BatchPayment"] = {
                "BatchPaymentID": batch,
                "Type": "RECBATCH",
                "TotalAmount": group.total.quantize(_values.CENT),
            }
        return document

    def encode_payment(
        self, payment: Payment, warnings: list[str] | None = None, *, facts: Facts = NO_FACTS
    ) -> bytes:
        return self.encode_page([payment], warnings=warnings, facts=facts)

    def encode_payments(
        self,
        payments: Sequence[Payment],
        warnings: list[str] | None = None,
        *,
        facts: Facts = NO_FACTS,
    ) -> bytes:
        return self.encode_page(payments, warnings=warnings, facts=facts)

    def encode_removed(self, payment: Payment, *, facts: Facts = NO_FACTS) -> bytes:
        """The answer to a delete: the payment echoed with `Status` DELETED."""
        return self.encode_page([payment], status="DELETED", facts=facts)

    def encode_batch(
        self,
        results: Sequence[Payment | GatewayError],
        warnings: list[str] | None = None,
        *,
        facts: Facts = NO_FACTS,
    ) -> bytes:
        """Each item with `StatusAttributeString` OK, or ERROR with its ValidationErrors
        beside the fields it was sent with, as Xero echoes a refused item."""
        items: list[dict[str, Any]] = []
        for result in results:
            if isinstance(result, GatewayError):
                echo = _echo(result)
                problems = [{"Message": m} for m in self.dialect.messages(result)]
                item = {"HasValidationErrors": True, "ValidationErrors": problems}
                items.append({**echo, "StatusAttributeString": "ERROR", **item})
            else:
                document = self.payment_object(result, warnings, facts=facts)
                items.append({**document, "StatusAttributeString": "OK"})
        return self.envelope(items, None)

    def encode_page(
        self,
        payments: Sequence[Payment],
        page: Page | None = None,
        *,
        warnings: list[str] | None = None,
        status: str | None = None,
        facts: Facts = NO_FACTS,
    ) -> bytes:
        """Xero's response envelope around `payments`, with a `pagination` block if paged."""
        items = [self.payment_object(p, warnings, status, facts) for p in payments]
        return self.envelope(items, page)

    def envelope(
        self,
        items: list[dict[str, Any]],
        page: Page | None,
        listed_as: tuple[str, str] = ("Payments", "Payment"),
    ) -> bytes:
        moment = NOW.get()()
        digest = hashlib.sha256(repr((moment, items)).encode()).digest()
        envelope: dict[str, Any] = {
            "Id": str(uuid.UUID(bytes=digest[:16], version=4)),
            "Status": "OK",
            "ProviderName": PROVIDER,
            "DateTimeUTC": self.stamp(moment),
        }
        if page is not None:
            envelope["pagination"] = {
                "page": page.page,
                "pageSize": page.page_size,
                "pageCount": page.page_count,
                "itemCount": page.item_count,
            }
        return self.write_envelope(envelope, items, listed_as)

    def encode_request(self, fields: Mapping[str, Any], warnings: list[str] | None = None) -> bytes:
        document: dict[str, Any] = {}
        for spec, value in self.dialect.request_rows(fields, warnings):
            if spec.kind is Kind.DATE:
                value = fields[spec.attr].date().isoformat()
            elif isinstance(value, Decimal):
                value = value.quantize(_values.CENT)
            *parents, leaf = spec.wire.split(".")
            target = document
            for parent in parents:
                target = target.setdefault(parent, {})
            target[leaf] = value
        return self.write("Payment", document)

    def encode_error(self, error: GatewayError) -> Reply:
        status = self.dialect.status_of(error)
        headers = error.headers()
        if status == 404:
            headers["Content-Type"] = "text/html; charset=utf-8"
            return Reply(404, NOT_FOUND, headers)
        if status in _PROBLEMS:
            if status == 429:
                headers["X-Rate-Limit-Problem"] = "minute"
            if isinstance(error, TokenExpired):
                # RFC 6750's challenge for a token past its expiry, Xero's words in it.
                headers["WWW-Authenticate"] = (
                    f'Bearer error="invalid_token", error_description="{error.message}"'
                )
            headers["Content-Type"] = "application/json; charset=utf-8"
            return Reply(status, _json.dumps(_problem(status, error.message)), headers)
        key = "bad_query" if isinstance(error, BadQuery) else error.kind
        number, kind = _EXCEPTIONS.get(key, (status, "ApiException"))
        messages = self.dialect.messages(error)
        if kind == "ValidationException":
            document = {
                "ErrorNumber": number,
                "Type": kind,
                "Message": "A validation exception occurred",
                "Elements": [
                    {
                        # Xero echoes the refused payment beside its messages.
                        **_echo(error),
                        "ValidationErrors": [{"Message": message} for message in messages],
                        "HasValidationErrors": True,
                    }
                ],
            }
        else:
            document = {"ErrorNumber": number, "Type": kind, "Message": "; ".join(messages)}
        return Reply(status, self.write_exception(document), headers)


class XeroXml(XeroCodec):
    """Xero's XML: `<Response>` envelopes, UTC times without a zone, `xsi:nil`."""

    fmt = "xml"

    def moment(self, moment: datetime) -> str:
        return xml_moment(moment)

    def stamp(self, moment: datetime) -> str:
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def items(self, body: bytes) -> list[dict[str, Any]]:
        root = _xml.parse(body)
        tag = _xml.local(str(root.tag))
        if tag == "Response":
            root = _child(root, "Payments")
            tag = "Payments"
        if tag == "Payment":
            return [_xml_fields(root)]
        if tag != "Payments":
            raise BadRequest(f"Expected a <Payment> or <Payments> document, got <{root.tag}>")
        found = []
        for child in root:
            if _xml.local(str(child.tag)) != "Payment":
                raise BadRequest(f"Unexpected <{child.tag}> in <Payments>")
            found.append(_xml_fields(child))
        return found

    def write(self, name: str, document: Mapping[str, Any]) -> bytes:
        return _xml.nested_document(name, document)

    def write_envelope(
        self, envelope: dict[str, Any], items: list[dict[str, Any]], listed_as: tuple[str, str]
    ) -> bytes:
        plural, singular = listed_as
        write = _payment_element if singular == "Payment" else partial(_xml.nested, singular)
        listed = [write(item) for item in items]
        return _xml.nested_document("Response", {**envelope, plural: listed}, _NAMESPACES)

    def write_exception(self, document: Mapping[str, Any]) -> bytes:
        return _api_exception(document)

    def error_details(self, body: bytes) -> tuple[str, dict[str, str]]:
        """Xero's error messages: the validation messages if any, else the summary."""
        root = _xml.parse(body)
        found = [e.text or "" for e in root.iter() if _xml.local(str(e.tag)) == "Message"]
        return _details(found[1:] or found)


class XeroJson(XeroCodec):
    """Xero's JSON: the envelope as an object, Microsoft JSON dates (`/Date(..)/`)."""

    fmt = "json"

    def moment(self, moment: datetime) -> str:
        return ms_date(moment)

    def stamp(self, moment: datetime) -> str:
        return ms_date(moment).replace("+0000", "")

    def items(self, body: bytes) -> list[dict[str, Any]]:
        document = require_mapping(_json.loads(body), "a payment")
        if "Payments" not in document:
            return [_flatten(document)]
        listed = document["Payments"]
        if not isinstance(listed, list):
            raise BadRequest("Payments must be a list")
        return [_flatten(require_mapping(item, "a payment")) for item in listed]

    def write(self, name: str, document: Mapping[str, Any]) -> bytes:
        return _json.dumps(document)

    def write_envelope(
        self, envelope: dict[str, Any], items: list[dict[str, Any]], listed_as: tuple[str, str]
    ) -> bytes:
        return _json.dumps({**envelope, listed_as[0]: items})

    def write_exception(self, document: Mapping[str, Any]) -> bytes:
        return _json.dumps(document)

    def error_details(self, body: bytes) -> tuple[str, dict[str, str]]:
        """Xero's error messages: the validation messages if any, else the summary."""
        try:
            found = list(_json_messages(_json.loads(body)))
        except BadRequest:
            found = []
        return _details(found)


def _details(found: list[str]) -> tuple[str, dict[str, str]]:
    message = "; ".join(m for m in found if m) or "Request refused"
    fields = {"Amount": "exceeds the amount outstanding"} if OVERPAYMENT in found else {}
    return message, fields


class Xero(Dialect):
    name = "xero"
    codec_types = {"xml": XeroXml, "json": XeroJson}
    root = "Payment"
    list_root = "Payments"
    fields = (
        Spec("PaymentID", "id", Kind.ID, server_owned=True),
        Spec("Date", "paid_at", Kind.DATE),
        Spec("BankAmount", "bank_amount", Kind.CONST, value=lambda p: p.amount),
        Spec("Amount", "amount", Kind.AMOUNT),
        Spec("CurrencyRate", "currency_rate", Kind.CONST, value=_const(Decimal("1.000000"))),
        Spec("Reference", "notes", Kind.TEXT),
        Spec("PaymentType", "payment_type", Kind.CONST, value=_const("ACCRECPAYMENT")),
        Spec("Status", "status", Kind.CONST, value=_status, reads=("deleted_at",)),
        Spec("UpdatedDateUTC", "updated_at", Kind.DATETIME, server_owned=True),
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
    # Every refusal of a payment's content is Xero's 400 ValidationException; a stale
    # version keeps 409 (Xero has no concurrency token on payments to name it).
    statuses = {
        "validation": 400, "ledger": 400, "unapplied": 400, "customer_mismatch": 400,
        "split_unsupported": 400,
    }  # fmt: skip
    shows_deleted = True
    shows_facts = True
    shows_groups = True

    def __init__(self) -> None:
        self.search: XeroSearch = XeroSearch(self)

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

    # --- decoding ----------------------------------------------------------------------------

    def decode_fields(self, raw: Mapping[str, Any], *, foreign_ids: bool = False) -> Decoded:
        """A payment; one a backend marks `Status` DELETED is deleted as of its update."""
        decoded = super().decode_fields(raw, foreign_ids=foreign_ids)
        if raw.get("Status") != "DELETED" or "id" not in decoded.ids:
            return decoded
        when = decoded.payment.updated_at or NOW.get()()
        payment = decoded.payment.model_copy(update={"deleted_at": when})
        return Decoded(payment, decoded.provided, decoded.options, decoded.ids)

    def check_create(self, decoded: Decoded) -> None:
        """Amount, account and invoice (by id or number) are required, as Xero requires them."""
        missing = {}
        if "amount" not in decoded.provided:
            missing["amount"] = "can't be blank"
        if not {"account_code", "account_id"} & decoded.provided:
            missing["account_code"] = "can't be blank"
        if "invoice_id" not in decoded.provided and not decoded.options.get("invoice_number"):
            missing["invoice_id"] = "can't be blank"
        if missing:
            raise ValidationFailed(fields=missing)

    def list_params(self, invoice: str) -> dict[str, str]:
        """An invoice's live payments: Xero lists deleted ones too, unless asked not to."""
        return {"where": f'Invoice.InvoiceID==guid("{invoice}") AND Status=="AUTHORISED"'}

    @cached_property
    def elements(self) -> dict[str, xero_query.Element]:
        """Every element of a payment a `where` clause may compare, by wire name."""
        found: dict[str, xero_query.Element] = {}
        for spec in self.fields:
            if spec.kind in (Kind.AMOUNT, Kind.MONEY):
                found[spec.wire] = ("amount", attrgetter(spec.attr))
            elif spec.kind in (Kind.DATE, Kind.DATETIME):
                found[spec.wire] = ("moment", attrgetter(spec.attr))
            elif spec.kind is Kind.TEXT and spec.attr in Payment.model_fields:
                found[spec.wire] = ("text", attrgetter(spec.attr))
            elif spec.kind is Kind.CONST and spec.value is not None:
                sample = spec.value(Payment(amount=Decimal(1)))
                kind = {bool: "flag", Decimal: "amount", str: "text"}[type(sample)]
                found[spec.wire] = (kind, spec.value)
        return found

    def summarised(self, query: Mapping[str, str]) -> bool:
        return query.get("summarizeErrors", "true").strip().lower() != "false"

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


def _echo(refused: GatewayError) -> dict[str, Any]:
    """A refused batch item's fields as it sent them, nested again, as Xero echoes them:
    the payment's own fields with plain values (its model drops anything else), text made
    fit for XML."""
    document: dict[str, Any] = {}
    for wire, value in (refused.sent or {}).items():
        if wire not in _ECHOED or not isinstance(value, str | int | float | Decimal):
            continue
        _place(document, wire, _xml.safe(value) if isinstance(value, str) else value)
    return document


def _place(document: dict[str, Any], wire: str, value: object) -> None:
    """Set a dotted wire name's value in nested objects: `Invoice.InvoiceID` -> {Invoice: {..}}."""
    *parents, leaf = wire.split(".")
    target = document
    for parent in parents:
        target = target.setdefault(parent, {})
    target[leaf] = value


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


def _payment_element(item: Mapping[str, Any]) -> str:
    """A `<Payment>`; a batch item's status is its `status` attribute, as in Xero's XML."""
    fields: dict[str, Any] = {
        k: v for k, v in item.items() if k not in ("StatusAttributeString", "ValidationErrors")
    }
    if "ValidationErrors" in item:
        fields["ValidationErrors"] = _validation_errors(item["ValidationErrors"])
    status = item.get("StatusAttributeString")
    return _xml.nested("Payment", fields, {"status": status} if status is not None else {})


def _validation_errors(problems: list[dict[str, Any]]) -> list[str]:
    """`<ValidationError><Message>..</Message></ValidationError>` for each problem."""
    return [_xml.nested("ValidationError", {"Message": p["Message"]}) for p in problems]


def _child(root: etree._Element, name: str) -> etree._Element:
    for child in root:
        if _xml.local(str(child.tag)) == name:
            return child
    raise BadRequest(f"Expected <{name}> in <{root.tag}>")


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


_ERROR_KEYS = ("ValidationErrors", "HasValidationErrors")
# What a refused item's echo may hold: the payment's fields, and only characters XML has.
_ECHOED = frozenset(spec.wire for spec in Xero.fields) - set(_ERROR_KEYS)


def _api_exception(document: Mapping[str, Any]) -> bytes:
    """`<ApiException>`, Xero's XML error, validation messages in `<Elements>`."""
    exception = {key: document[key] for key in ("ErrorNumber", "Type", "Message")}
    if "Elements" in document:
        exception["Elements"] = [
            _xml.nested(
                "DataContractBase",
                {
                    "ValidationErrors": _validation_errors(item["ValidationErrors"]),
                    **{k: v for k, v in item.items() if k not in _ERROR_KEYS},
                },
                {"xsi:type": "Payment"},
            )
            for item in document["Elements"]
        ]
    return _xml.nested_document("ApiException", exception, _NAMESPACES)


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


# --- configuration: custom connections, and the gateway as one of a backend ----------------


class XeroClient(Strict):
    client_id: str
    secret: str = Field(description="scrypt hash (`python -m gateway hash-secret`) or plain")
    name: str = ""
    public_key: str | None = Field(
        default=None, description="PEM of an ES256 key the client may sign its own tokens with"
    )


class XeroOrganisation(Strict):
    """What `GET /Organisation` tells of the tenant (Xero's values, Xero's names)."""

    name: str = Field(default="", description="default: `tenant_name`, else the tenant's name")
    legal_name: str = Field(default="", description="default: the name")
    short_code: str | None = Field(
        default=None,
        pattern=r"^![0-9A-Za-z]{5}$",
        description="`!` and five letters or digits; default: derived from `tenant_id`",
    )
    base_currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    country_code: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    version: Literal["AU", "NZ", "GLOBAL", "UK", "US"] = "GLOBAL"
    organisation_type: Literal["COMPANY", "SOLETRADER", "PARTNERSHIP", "TRUST", "CHARITY"] = (
        "COMPANY"
    )
    timezone: str = Field(default="UTC", pattern=r"^[A-Z]{1,40}$")
    financial_year_end_day: int = Field(default=31, ge=1, le=31)
    financial_year_end_month: int = Field(default=12, ge=1, le=12)
    pays_tax: bool = False
    is_demo_company: bool = False


class XeroAuth(Section):
    """The tenant as a Xero organisation: its id in `xero-tenant-id`, its custom connections."""

    tenant_id: str = Field(description="the organisation's id, a UUID")
    tenant_name: str = ""
    clients: tuple[XeroClient, ...] = ()
    organisation: XeroOrganisation = Field(default_factory=XeroOrganisation)
    routing = ("tenant_id", "clients.*.client_id")

    @field_validator("tenant_id")
    @classmethod
    def _uuid(cls, value: str) -> str:
        if not _UUID.fullmatch(value):
            raise ValueError("tenant_id must be a UUID")
        return value.lower()

    def credentials(self) -> tuple[Credential, ...]:
        return tuple(
            Credential(
                client.secret,
                client.name or client.client_id,
                label=client.client_id,
                login=client.client_id,
                app=client.client_id,
                scope=self.tenant_id,
                scopes=(self.tenant_name,),
                public_key=client.public_key,
            )
            for client in self.clients
        )


class XeroBackend(BackendConfig):
    """A Xero backend, reached as a custom connection: client credentials for a token."""

    dialect: Literal["xero"]
    client_id: str | None = None
    client_secret: str | None = None
    tenant_id: str | None = None
    needs = ("client_id", "client_secret", "tenant_id")

    def client_auth(self) -> ClientAuth:
        headers = {
            **basic_header(self.client_id or "", self.client_secret or ""),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        body = urlencode({"grant_type": "client_credentials"}).encode()
        tenant = {"xero-tenant-id": self.tenant_id or ""}
        return TokenGrant(TOKEN_PATH, body, headers, oauth.token_from, calls=tenant)


# --- the identity endpoints: `POST /connect/token` and `GET /connections` ---------------------


def _read_client(body: bytes, headers: Mapping[str, str]) -> tuple[str, str]:
    """A client-credentials grant: the client's id and secret, in Basic or in the form."""
    return oauth.client_of(oauth.read_form(body, "client_credentials"), headers)


def _token_error(error: GatewayError) -> Reply | None:
    """OAuth 2.0's error answers; limits (429) and the server's own troubles keep Xero's
    problem documents."""
    return oauth.token_error(error, "connect/token")


def _token_claims(credential: Credential) -> dict[str, Any]:
    return {"xero_tenant_id": credential.scope, "scope": SCOPES}


def _token_answer(token: str, credential: Credential, lifetime: int) -> tuple[int, str, bytes]:
    data = {"access_token": token, "expires_in": lifetime, "token_type": "Bearer", "scope": SCOPES}
    return 200, "application/json", _json.dumps(data)


def _connections(tenant: str, credential: Credential) -> tuple[int, str, bytes]:
    """The one connection a custom connection has: its organisation."""
    moment = NOW.get()().astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")
    tenant = credential.scope or ""
    connection = {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{credential.login}/{tenant}")),
        "authEventId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{credential.login}")),
        "tenantId": tenant,
        "tenantType": "ORGANISATION",
        "tenantName": credential.scopes[0] if credential.scopes else "",
        "createdDateUtc": moment,
        "updatedDateUtc": moment,
    }
    return 200, "application/json", _json.dumps([connection])


def _organisation(call: EndpointCall) -> tuple[int, str, bytes]:
    """`GET /Organisation`: the tenant's organisation in Xero's envelope, XML or JSON."""
    section = call.section
    assert isinstance(section, XeroAuth)  # a Xero token opens only a tenant with a section
    found = section.organisation
    name = found.name or section.tenant_name or call.tenant
    digest = hashlib.sha256(section.tenant_id.encode()).digest()
    derived = "!" + "".join(_SHORT_CODE[byte % len(_SHORT_CODE)] for byte in digest[:5])
    organisation = {
        "OrganisationID": section.tenant_id,
        "Name": name,
        "LegalName": found.legal_name or name,
        "PaysTax": found.pays_tax,
        "Version": found.version,
        "OrganisationType": found.organisation_type,
        "BaseCurrency": found.base_currency,
        "CountryCode": found.country_code,
        "IsDemoCompany": found.is_demo_company,
        "OrganisationStatus": "ACTIVE",
        "FinancialYearEndDay": found.financial_year_end_day,
        "FinancialYearEndMonth": found.financial_year_end_month,
        "Timezone": found.timezone,
        "OrganisationEntityType": found.organisation_type,
        "ShortCode": found.short_code or derived,
        "Edition": "BUSINESS",
    }
    shown = {key: value for key, value in organisation.items() if value is not None}
    codec = UNIT.codec.codecs[call.fmt]
    assert isinstance(codec, XeroCodec)
    body = codec.envelope([shown], None, ("Organisations", "Organisation"))
    return 200, _MEDIA_TYPES[call.fmt], body


_SHORT_CODE = "0123456789abcdefghijklmnopqrstuvwxyz"
_MEDIA_TYPES = {"xml": "application/xml", "json": "application/json"}
API = "/api.xro/2.0"
TOKEN_PATH = "/connect/token"
SCOPES = "accounting.transactions accounting.settings"
_PAYMENTS = API + "/Payments"

UNIT = DialectUnit(
    codec=Xero(),
    routes=(
        Route("GET", _PAYMENTS, Op.SEARCH),
        Route("PUT", _PAYMENTS, Op.CREATE_MANY),
        Route("POST", _PAYMENTS, Op.CREATE_MANY),
        Route("GET", _PAYMENTS + "/{payment_id}", Op.GET),
        Route("POST", _PAYMENTS + "/{payment_id}", Op.REMOVE),
    ),
    prefixes=("/api.xro/", "/connect/", "/connections", "/Connections"),
    caller_auth=BearerAuth(
        "xero",
        scope=("header", "xero-tenant-id"),
        scope_claim="xero_tenant_id",
        invalid="AuthenticationUnsuccessful",
        forbidden="AuthenticationUnsuccessful",
        expired=lambda moment: f"TokenExpired: token expired at {moment:%m/%d/%Y %H:%M:%S}",
    ),
    token_endpoint=TokenEndpoint(
        TOKEN_PATH,
        _read_client,
        _token_claims,
        _token_answer,
        body_format="form",
        invalid="invalid_client",
        error=_token_error,
    ),  # fmt: skip
    # Xero documents /connections; its SDK asks for /Connections.
    endpoints=(
        *(
            Endpoint("GET", path, _connections, scoped=False)
            for path in ("/connections", "/Connections")
        ),
        Endpoint("GET", API + "/Organisation", render=_organisation),
    ),
    section=XeroAuth,
    backend=XeroBackend,
    vendor=("xero",),
    testing="dialects.testing.xero",
    idempotency_header="Idempotency-Key",
)
