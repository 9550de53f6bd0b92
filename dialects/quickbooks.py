"""QuickBooks Online's Payment (Accounting API v3): JSON by default, XML on request.

A QuickBooks payment is a whole payment: its `Line`s link it to one invoice or more,
each line one *allocation* of the canonical model (one stored row per allocation,
sharing the payment's group id). `Id` is the group id, `SyncToken` the group's
version, `TotalAmt` the sum of its live lines. Answers are wrapped as QuickBooks wraps
them (`{"Payment": ..., "time": ...}`, `QueryResponse`, `<IntuitResponse>`), errors
are `Fault` envelopes with QuickBooks' types and codes.

The whole-payment operations (a create or update naming several invoices, delete and
void by body, the query language) are the gateway's generic grouped operations
(`unit.Grouping`); this module reads and writes their documents.
"""

from __future__ import annotations

import hmac
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, field_validator

from . import _json, _values, _xml, oauth, quickbooks_query
from .auth import basic_header
from .base import Codec, Decoded, Dialect, Kind, Reply, Spec, require_mapping
from .errors import (
    BadQuery,
    BadRequest,
    Conflict,
    Forbidden,
    GatewayError,
    KeyReused,
    LedgerRefused,
    MethodNotAllowed,
    NotAuthenticated,
    NotFound,
    NotSupported,
    StaleVersion,
    TooManyRequests,
    Unapplied,
    ValidationFailed,
)
from .model import NO_FACTS, Facts, Payment, PaymentQuery
from .quickbooks_query import Group, Plan, groups_of
from .unit import (
    BackendConfig,
    BearerAuth,
    ClientAuth,
    Credential,
    DialectUnit,
    Document,
    GroupWrite,
    NoRoute,
    Op,
    Route,
    Section,
    Strict,
    TokenEndpoint,
    TokenGrant,
)

NAMESPACE = "http://schema.intuit.com/finance/v3"
ZERO = Decimal(0)
# When an answer is written (its `time`): a clock tests may fix.
NOW: ContextVar[Callable[[], datetime]] = ContextVar(
    "quickbooks_now", default=lambda: datetime.now(UTC)
)

# The Fault messages QuickBooks writes, by code.
MESSAGES = {
    "100": "General Authentication Error",
    "120": "Authorization Failure",
    "500": "Unsupported Operation",
    "600": "Duplicate Request ID",
    "610": "Object Not Found",
    "2010": "Request has invalid or unsupported property",
    "2020": "Required param missing, need to supply the required value for the API",
    "4000": "Error parsing query",
    "4001": "Invalid query",
    "5010": "Stale Object Error",
    "6000": "A business validation error has occurred while processing your request",
    "10000": "An application error has occurred while processing your request",
}
STALE = (
    "Stale Object Error : You and QuickBooks were working on this at the same time. "
    "QuickBooks finished before you did, so your work was not saved."
)
NOT_FOUND = (
    "Object Not Found : Something you're trying to use has been made inactive. "
    "Check the fields with accounts, customers, items, vendors or employees."
)


def stamp(moment: datetime) -> str:
    """An answer's `time`: milliseconds and an offset (`2026-11-20T10:00:00.000+00:00`)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def meta_time(moment: datetime | None) -> str | None:
    """`MetaData` times: seconds and an offset."""
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def number(amount: Decimal) -> Decimal:
    """A JSON number as QuickBooks writes it: `150.0`, `25.5`, `0`."""
    if amount == 0:
        return Decimal(0)
    normal = amount.normalize()
    return normal.quantize(Decimal("0.0")) if normal == normal.to_integral_value() else normal


def xml_number(amount: Decimal) -> str:
    """XML decimals: two places (`65.00`), zero as `0`."""
    return "0" if amount == 0 else str(amount.quantize(_values.CENT))


# --- the error codes --------------------------------------------------------------------


def fault_of(error: GatewayError) -> tuple[int, str, str, str, str]:
    """(HTTP status, Fault type, code, message, detail) for a refusal."""
    detail = error.message
    code, status = _fault_code(error), error.status
    if code == "2020":
        detail = f"Required parameter {wire_top(_missing(error))} is missing in the request"
    elif code == "2010" and error.fields:
        attr, problem = next(iter(error.fields.items()))
        detail = f"{wire_top(attr)} {problem}"
    elif code == "6000":
        detail = f"Business Validation Error: {detail}"
    elif code == "610":
        detail = f"{NOT_FOUND} ({detail})"
    elif code == "5010":
        detail = STALE
    if code == "500" or (code in _VALIDATION and status in (409, 422)):
        status = 400  # QuickBooks answers its validation faults 400
    kind = "SystemFault" if code == "10000" else "ValidationFault"
    return status, kind, code, MESSAGES.get(code, MESSAGES["2010"]), detail


# The codes answered 400 (a missing object, 610, keeps 404: QuickBooks' status for it is
# not documented, and every client reads the Fault whatever the status).
_VALIDATION = ("2010", "2020", "4000", "4001", "5010", "6000")


def _missing(error: GatewayError) -> str:
    return next(a for a, problem in error.fields.items() if problem == "can't be blank")


def _fault_code(error: GatewayError) -> str:
    """QuickBooks' code for a refusal."""
    if isinstance(error, BadQuery):
        return str(getattr(error, "code", "4000"))
    if isinstance(error, NoRoute | NotSupported | MethodNotAllowed):
        return "500"
    if isinstance(error, NotFound):
        return "610"
    if isinstance(error, StaleVersion):
        return "5010"
    if isinstance(error, KeyReused | Conflict):
        return "600"
    if isinstance(error, ValidationFailed):
        if any(problem == "can't be blank" for problem in error.fields.values()):
            return "2020"
        return "2010" if error.fields else "6000"
    if isinstance(error, LedgerRefused):
        return "6000"
    return "2010" if error.status < 500 else "10000"


_WIRE_TOP = {
    "amount": "TotalAmt",
    "paid_at": "TxnDate",
    "customer": "CustomerRef",
    "invoice_id": "Line.LinkedTxn.TxnId",
    "notes": "PrivateNote",
    "reference": "PaymentRefNum",
    "account_code": "DepositToAccountRef",
    "method": "PaymentMethodRef",
    "version": "SyncToken",
}


def wire_top(attr: str) -> str:
    return _WIRE_TOP.get(attr, attr)


def _auth_envelope(status: int, error: GatewayError) -> bytes:
    """The lower-case envelope QuickBooks' identity layer answers 401, 403 and 429 with."""
    codes = {401: ("3200", "AuthenticationFailed", "AUTHENTICATION"),
             403: ("3100", "AuthorizationFailed", "SERVICE"),
             429: ("3001", "ThrottleExceeded", "SERVICE")}  # fmt: skip
    code, name, kind = codes[status]
    document: dict[str, Any] = {
        "warnings": None,
        "intuitObject": None,
        "fault": {
            "error": [
                {
                    "message": f"message={name}; errorCode={int(code):06d}; statusCode={status}",
                    "detail": error.message,
                    "code": code,
                    "element": None,
                }
            ],
            "type": kind,
        },
        "report": None,
        "queryResponse": None,
        "batchItemResponse": [],
        "attachableResponse": [],
        "syncErrorResponse": None,
        "requestId": None,
        "time": _values.epoch_ms(NOW.get()()),
        "status": None,
        "cdcresponse": [],
    }
    return _json.dumps(document)


# --- documents as nested mappings, written per format --------------------------------------


class QuickBooksCodec(Codec):
    """One format of QuickBooks' documents: payments are built as ordered mappings here
    (`payment_document`), the format's subclass reads and writes them."""

    dialect: QuickBooks

    # --- what differs by format ------------------------------------------------------

    @abstractmethod
    def raw_fields(self, body: bytes) -> dict[str, Any]:
        """A Payment request's fields, flat: `CustomerRef.value`, and `Line` as a list of
        (invoice id text, amount, link type) per line."""
        ...

    @abstractmethod
    def write_payment(self, document: Mapping[str, Any], status: str | None = None) -> bytes: ...

    @abstractmethod
    def write_query(self, documents: list[dict[str, Any]], start: int) -> bytes: ...

    @abstractmethod
    def write_count(self, count: int) -> bytes: ...

    @abstractmethod
    def write_deleted(self, wire_id: str) -> bytes: ...

    @abstractmethod
    def write_fault(
        self, kind: str, code: str, message: str, detail: str, element: str
    ) -> bytes: ...

    @abstractmethod
    def write_request(self, document: Mapping[str, Any]) -> bytes:
        """A request body: the bare Payment, as clients send it."""
        ...

    # --- reading ---------------------------------------------------------------------

    def payment_fields(self, body: bytes) -> Mapping[str, Any]:
        return self.raw_fields(body)

    @abstractmethod
    def list_items(self, body: bytes) -> list[Mapping[str, Any]]: ...

    # --- writing ---------------------------------------------------------------------

    def payment_document(
        self, group: Group, facts: Facts, warnings: list[str] | None = None
    ) -> dict[str, Any]:
        """A whole payment in the XSD's order; absent values are left out."""
        first = group.first
        live = group.live
        voided = first.voided
        doc: dict[str, Any] = {
            "Id": str(self.dialect.wire_id(group.id)),
            "SyncToken": str(max(getattr(p, "version", 0) for p in group.allocations)),
            "MetaData": {
                "CreateTime": meta_time(group.created_at),
                "LastUpdatedTime": meta_time(group.updated_at),
            },
        }
        if first.paid_at is not None:
            doc["TxnDate"] = first.paid_at.date().isoformat()
        invoice = facts.invoices.get(first.invoice_id or 0)
        if invoice is not None:
            doc["CurrencyRef"] = {"value": invoice.currency, "name": invoice.currency}
        note = first.notes
        if voided:
            note = f"Voided - {note}" if note else "Voided"
        if note is not None:
            doc["PrivateNote"] = note
        doc["Line"] = [
            {
                "Amount": p.amount or ZERO,
                "LinkedTxn": [
                    {"TxnId": str(self.dialect.wire_id(p.invoice_id or 0)), "TxnType": "Invoice"}
                ],
            }
            for p in live
        ]
        customer = getattr(first, "customer", None)
        if customer is None and invoice is not None:
            customer = getattr(invoice, "customer", None)
        if customer is not None:
            doc["CustomerRef"] = {"value": customer}
        if first.account_code is not None:
            account = {"value": first.account_code}
            name = facts.account_names.get(first.account_code)
            if name:
                account["name"] = name
            doc["DepositToAccountRef"] = account
        if first.reference is not None:
            doc["PaymentRefNum"] = first.reference
        doc["TotalAmt"] = group.total
        doc["UnappliedAmt"] = ZERO
        doc["ProcessPayment"] = False
        return doc

    def encode_group(
        self, payments: Sequence[Payment], warnings: list[str] | None = None,
        facts: Facts = NO_FACTS,
    ) -> bytes:  # fmt: skip
        (group,) = groups_of(payments)
        return self.write_payment(self.payment_document(group, facts, warnings))

    def encode_payment(
        self, payment: Payment, warnings: list[str] | None = None, *, facts: Facts = NO_FACTS
    ) -> bytes:
        return self.encode_group([payment], warnings, facts)

    def encode_payments(
        self,
        payments: Sequence[Payment],
        warnings: list[str] | None = None,
        *,
        facts: Facts = NO_FACTS,
    ) -> bytes:
        groups = groups_of(payments)
        return self.write_query([self.payment_document(g, facts, warnings) for g in groups], 1)

    def encode_result(
        self, payments: Sequence[Payment], plan: Plan, warnings: list[str], facts: Facts
    ) -> bytes:
        page, count = plan.select(groups_of(payments))
        if plan.count:
            return self.write_count(count)
        return self.write_query([self.payment_document(g, facts, warnings) for g in page],
                                plan.start)  # fmt: skip

    def encode_request(self, fields: Mapping[str, Any], warnings: list[str] | None = None) -> bytes:
        """A create as a client sends it (proxy mode): one line on the payment's invoice."""
        draft = Payment(**{k: v for k, v in fields.items() if k in Payment.model_fields})
        amount = draft.amount or ZERO
        doc: dict[str, Any] = {}
        if draft.paid_at is not None:
            doc["TxnDate"] = draft.paid_at.date().isoformat()
        if draft.notes is not None:
            doc["PrivateNote"] = draft.notes
        if fields.get("invoice_id") is not None:
            invoice = str(self.dialect.wire_id(fields["invoice_id"]))
            doc["Line"] = [
                {"Amount": amount, "LinkedTxn": [{"TxnId": invoice, "TxnType": "Invoice"}]}
            ]
        customer = fields.get("customer")
        if customer is not None:
            doc["CustomerRef"] = {"value": customer}
        if draft.account_code is not None:
            doc["DepositToAccountRef"] = {"value": draft.account_code}
        if draft.reference is not None:
            doc["PaymentRefNum"] = draft.reference
        doc["TotalAmt"] = amount
        return self.write_request(doc)

    def encode_error(self, error: GatewayError) -> Reply:
        headers = error.headers()
        if isinstance(error, NotAuthenticated | Forbidden | TooManyRequests):
            status = error.status
            if self.fmt == "json":
                headers["Content-Type"] = "application/json; charset=utf-8"
                return Reply(status, _auth_envelope(status, error), headers)
            kind, code = (
                ("AuthenticationFault", "100") if status == 401
                else ("AuthorizationFault", "120") if status == 403
                else ("SystemFault", "3001")
            )  # fmt: skip
            message = MESSAGES.get(code, "Throttle exceeded")
            body = self.write_fault(
                kind, code, message, f"{error.message}, statusCode: {status}", ""
            )
            return Reply(status, body, headers)
        status, kind, code, message, detail = fault_of(error)
        element = ""
        if error.fields:
            element = wire_top(next(iter(error.fields)))
        return Reply(status, self.write_fault(kind, code, message, detail, element), headers)


class QuickBooksJson(QuickBooksCodec):
    fmt = "json"

    def write_request(self, document: Mapping[str, Any]) -> bytes:
        return _json.dumps(_json_ready(document))

    def raw_fields(self, body: bytes) -> dict[str, Any]:
        document = require_mapping(_json.loads(body), "a Payment")
        if "Payment" in document and isinstance(document["Payment"], dict):
            document = document["Payment"]
        return _flat(document)

    def list_items(self, body: bytes) -> list[Mapping[str, Any]]:
        document = require_mapping(_json.loads(body), "an answer")
        found = document.get("QueryResponse", {})
        found = require_mapping(found, "a QueryResponse").get("Payment", [])
        if not isinstance(found, list):
            raise BadRequest("QueryResponse.Payment must be a list")
        return [_flat(require_mapping(item, "a Payment")) for item in found]

    def write_payment(self, document: Mapping[str, Any], status: str | None = None) -> bytes:
        doc = {**_json_ready(document), "domain": "QBO", "sparse": False}
        return _json.dumps({"Payment": doc, "time": stamp(NOW.get()())})

    def write_query(self, documents: list[dict[str, Any]], start: int) -> bytes:
        response: dict[str, Any] = {}
        if documents:
            response["Payment"] = [
                {**_json_ready(d), "domain": "QBO", "sparse": False} for d in documents
            ]
        response.update(startPosition=start, maxResults=len(documents))
        return _json.dumps({"QueryResponse": response, "time": stamp(NOW.get()())})

    def write_count(self, count: int) -> bytes:
        return _json.dumps({"QueryResponse": {"totalCount": count}, "time": stamp(NOW.get()())})

    def write_deleted(self, wire_id: str) -> bytes:
        payment = {"status": "Deleted", "domain": "QBO", "Id": wire_id}
        return _json.dumps({"Payment": payment, "time": stamp(NOW.get()())})

    def write_fault(self, kind: str, code: str, message: str, detail: str, element: str) -> bytes:
        # No `time`: the same refusal is the same bytes (clients read only the Fault).
        error = {"Message": message, "Detail": detail, "code": code, "element": element}
        return _json.dumps({"Fault": {"Error": [error], "type": kind}})

    def error_details(self, body: bytes) -> tuple[str, dict[str, str]]:
        try:
            document = _json.loads(body)
        except BadRequest:
            return "Request refused", {}
        fault = document.get("Fault") if isinstance(document, dict) else None
        errors = fault.get("Error") if isinstance(fault, dict) else None
        if not isinstance(errors, list) or not errors or not isinstance(errors[0], dict):
            return "Request refused", {}
        first = errors[0]
        return str(first.get("Detail") or first.get("Message") or "Request refused"), {}


def _json_ready(document: Mapping[str, Any]) -> dict[str, Any]:
    """Amounts as QuickBooks' JSON numbers, empty MetaData times left out."""
    ready: dict[str, Any] = {}
    for key, value in document.items():
        if key == "MetaData":
            value = {k: v for k, v in value.items() if v is not None}
        elif key in ("TotalAmt", "UnappliedAmt"):
            value = number(value)
        elif key == "Line":
            value = [{**line, "Amount": number(line["Amount"])} for line in value]
        ready[key] = value
    return ready


def _ref(value: Any) -> Any:
    """A reference's id: `{"value": "58", "name": ...}`, or the id alone."""
    if isinstance(value, dict):
        return value.get("value")
    return value


def _flat(document: Mapping[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in document.items():
        if key.endswith("Ref"):
            flat[f"{key}.value"] = _ref(value)
        elif key == "Line":
            flat["Line"] = _json_lines(value)
        elif key == "MetaData" and isinstance(value, dict):
            for name, moment in value.items():
                flat[f"MetaData.{name}"] = moment
        else:
            flat[key] = value
    return flat


def _json_lines(value: Any) -> list[tuple[Any, Any, Any]]:
    if not isinstance(value, list):
        raise BadRequest("Line must be a list")
    lines = []
    for line in value:
        line = require_mapping(line, "a Line")
        links = line.get("LinkedTxn") or []
        if not isinstance(links, list):
            raise BadRequest("LinkedTxn must be a list")
        if len(links) != 1:
            lines.append((None, line.get("Amount"), None if not links else "several"))
            continue
        link = require_mapping(links[0], "a LinkedTxn")
        lines.append((link.get("TxnId"), line.get("Amount"), link.get("TxnType")))
    return lines


class QuickBooksXml(QuickBooksCodec):
    fmt = "xml"

    def write_request(self, document: Mapping[str, Any]) -> bytes:
        inner = _xml_payment_element(document).replace(
            "<Payment ", f'<Payment xmlns="{NAMESPACE}" ', 1
        )
        return _xml.DECLARATION + inner.encode()

    def raw_fields(self, body: bytes) -> dict[str, Any]:
        root = _xml.parse(body)
        if _xml.local(str(root.tag)) == "IntuitResponse":
            found = [c for c in root if _xml.local(str(c.tag)) == "Payment"]
            if len(found) != 1:
                raise BadRequest("Expected one <Payment>")
            root = found[0]
        if _xml.local(str(root.tag)) != "Payment":
            raise BadRequest(f"Expected a <Payment> document, got <{_xml.local(str(root.tag))}>")
        return _xml_payment(root)

    def list_items(self, body: bytes) -> list[Mapping[str, Any]]:
        root = _xml.parse(body)
        items: list[Mapping[str, Any]] = []
        for child in root.iter():
            if _xml.local(str(child.tag)) == "Payment":
                items.append(_xml_payment(child))
        return items

    def write_payment(self, document: Mapping[str, Any], status: str | None = None) -> bytes:
        inner = _xml_payment_element(document)
        return _intuit(inner)

    def write_query(self, documents: list[dict[str, Any]], start: int) -> bytes:
        inner = "".join(_xml_payment_element(d) for d in documents)
        head = f'<QueryResponse startPosition="{start}" maxResults="{len(documents)}">'
        return _intuit(head + inner + "</QueryResponse>")

    def write_count(self, count: int) -> bytes:
        return _intuit(f'<QueryResponse totalCount="{count}"/>')

    def write_deleted(self, wire_id: str) -> bytes:
        return _intuit(
            f'<Payment domain="QBO" status="Deleted"><Id>{_xml.text(wire_id)}</Id></Payment>'
        )

    def write_fault(self, kind: str, code: str, message: str, detail: str, element: str) -> bytes:
        error = (
            f"<Error code={_xml.attribute(code)} element={_xml.attribute(element)}>"
            f"<Message>{_xml.text(message)}</Message><Detail>{_xml.text(detail)}</Detail></Error>"
        )
        return _intuit(f"<Fault type={_xml.attribute(kind)}>{error}</Fault>", timed=False)

    def error_details(self, body: bytes) -> tuple[str, dict[str, str]]:
        try:
            root = _xml.parse(body)
        except BadRequest:
            return "Request refused", {}
        for element in root.iter():
            if _xml.local(str(element.tag)) == "Detail" and element.text:
                return element.text, {}
        return "Request refused", {}


def _intuit(inner: str, *, timed: bool = True) -> bytes:
    moment = f" time={_xml.attribute(stamp(NOW.get()()))}" if timed else ""
    return (
        _xml.DECLARATION
        + (f'<IntuitResponse xmlns="{NAMESPACE}"{moment}>{inner}</IntuitResponse>').encode()
    )


def _xml_ref(name: str, value: Mapping[str, Any]) -> str:
    attrs = f" name={_xml.attribute(value['name'])}" if value.get("name") else ""
    return f"<{name}{attrs}>{_xml.text(str(value['value']))}</{name}>"


def _xml_payment_element(document: Mapping[str, Any]) -> str:
    parts: list[str] = []
    for key, value in document.items():
        if key == "MetaData":
            times = "".join(f"<{k}>{_xml.text(v)}</{k}>" for k, v in value.items() if v is not None)
            parts.append(f"<MetaData>{times}</MetaData>")
        elif key == "Line":
            for line in value:
                (link,) = line["LinkedTxn"]
                parts.append(
                    f"<Line><Amount>{xml_number(line['Amount'])}</Amount><LinkedTxn>"
                    f"<TxnId>{_xml.text(link['TxnId'])}</TxnId>"
                    f"<TxnType>{link['TxnType']}</TxnType></LinkedTxn></Line>"
                )
        elif isinstance(value, Mapping):
            parts.append(_xml_ref(key, value))
        elif isinstance(value, Decimal):
            parts.append(f"<{key}>{xml_number(value)}</{key}>")
        else:
            parts.append(f"<{key}>{_xml.text(_xml.value_text(value))}</{key}>")
    return f'<Payment domain="QBO" sparse="false">{"".join(parts)}</Payment>'


def _xml_payment(root: Any) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    if root.get("sparse") is not None:
        flat["sparse"] = root.get("sparse")
    lines: list[tuple[Any, Any, Any]] = []
    for child in root:
        key = _xml.local(str(child.tag))
        if key == "Line":
            values = {_xml.local(str(c.tag)): c for c in child}
            links = [c for c in child if _xml.local(str(c.tag)) == "LinkedTxn"]
            amount = values["Amount"].text if "Amount" in values else None
            if len(links) != 1:
                lines.append((None, amount, None if not links else "several"))
                continue
            link = {_xml.local(str(c.tag)): c.text for c in links[0]}
            lines.append((link.get("TxnId"), amount, link.get("TxnType")))
        elif key == "MetaData":
            for c in child:
                flat[f"MetaData.{_xml.local(str(c.tag))}"] = c.text
        elif len(child):
            continue  # structures a payment here has no use for
        elif key in flat:
            raise BadRequest(f"Element <{key}> appears twice")
        elif key.endswith("Ref"):
            flat[f"{key}.value"] = child.text or ""
        else:
            flat[key] = child.text or ""
    if lines or any(_xml.local(str(c.tag)) == "Line" for c in root):
        flat["Line"] = lines
    return flat


# --- the dialect ----------------------------------------------------------------------------


class QuickBooks(Dialect):
    name = "quickbooks"
    codec_types = {"json": QuickBooksJson, "xml": QuickBooksXml}
    root = "Payment"
    fields = (
        Spec("Id", "id", Kind.ID, server_owned=True),
        Spec("TxnDate", "paid_at", Kind.DATE),
        Spec("Line.LinkedTxn.TxnId", "invoice_id", Kind.INVOICE_ID),
        Spec("CustomerRef.value", "customer", Kind.TEXT),
        Spec("DepositToAccountRef.value", "account_code", Kind.TEXT),
        Spec("PaymentRefNum", "reference", Kind.TEXT),
        Spec("PrivateNote", "notes", Kind.TEXT),
        Spec("TotalAmt", "amount", Kind.AMOUNT),
    )
    required = frozenset({"amount", "customer"})
    # QuickBooks answers its validation faults (a missing object, a ledger rule) 400.
    statuses = {
        "validation": 400, "ledger": 400, "unapplied": 400,
        "customer_mismatch": 400, "split_unsupported": 400, "stale_version": 400,
    }  # fmt: skip
    # A deleted payment is gone (610); a voided one stays readable, which the group
    # reads find by themselves (`voided`).
    shows_deleted = False
    shows_facts = True

    def __init__(self) -> None:
        self.search: QuickBooksSearch = QuickBooksSearch(self)

    def wire_id(self, number: int) -> str:
        return str(number)

    def parse_id(self, text: object) -> int | None:
        if isinstance(text, int) and not isinstance(text, bool):
            text = str(text)
        return super().parse_id(text)

    def read(self, spec: Spec, value: Any) -> Any:
        if spec.kind is Kind.DATE and isinstance(value, str) and "T" in value:
            moment = _values.parse_datetime(value)
            return datetime.combine(moment.date(), datetime.min.time(), UTC)
        return super().read(spec, value)

    def wire_name(self, attr: str) -> str:
        return wire_top(attr)

    def decode_fields(self, raw: Mapping[str, Any], *, foreign_ids: bool = False) -> Decoded:
        """A Payment: its fields, and one allocation per `Line` on an invoice."""
        lines = raw.get("Line")
        plain = {k: v for k, v in raw.items() if k != "Line"}
        decoded = super().decode_fields(plain, foreign_ids=foreign_ids)
        options = dict(decoded.options)
        for name in ("SyncToken", "sparse"):
            if name in raw:
                options[name] = raw[name]
        version = _version_of(raw.get("SyncToken"))
        if version:  # the version a backend showed (a request's is read by the write)
            decoded = replace(
                decoded, payment=decoded.payment.model_copy(update={"version": version})
            )
        if lines is None:
            return replace(decoded, options=options)
        allocations, problems, texts = [], {}, []
        for invoice_text, amount_raw, link_type in lines:
            if link_type == "several" or invoice_text is None:
                problems["invoice_id"] = "each Line links one invoice (LinkedTxn)"
                continue
            if str(link_type or "Invoice").lower() != "invoice":
                problems["invoice_id"] = f"a Line links an Invoice, not a {link_type}"
                continue
            if amount_raw is None and len(lines) == 1 and decoded.payment.amount is not None:
                amount_raw = decoded.payment.amount  # one line, no Amount: it applies the total
            try:
                amount = _values.parse_amount(amount_raw)
            except _values.ValueProblem as exc:
                problems["amount"] = f"Line.Amount {exc}"
                continue
            if amount <= 0:
                problems["amount"] = "Line.Amount must be greater than 0"
                continue
            texts.append(str(invoice_text))
            invoice = self.parse_id(invoice_text)
            allocations.append((invoice if invoice is not None else 0, amount))
        if problems:
            raise ValidationFailed(fields=problems)
        from .model import Allocation  # the split model (one payment, several invoices)

        made = tuple(Allocation(invoice_id=i, amount=a) for i, a in allocations)
        payment, ids = decoded.payment, dict(decoded.ids)
        provided = set(decoded.provided) | {"allocations"}
        if len(made) == 1:
            ids["invoice_id"] = texts[0]
            if not foreign_ids or made[0].invoice_id:
                payment = payment.model_copy(update={"invoice_id": made[0].invoice_id or None})
                provided.add("invoice_id")
            if payment.amount is None:
                payment = payment.model_copy(update={"amount": made[0].amount})
        return Decoded(payment, frozenset(provided & (self.settable | {"invoice_id"})), options,
                       ids, decoded.sent, allocations=made)  # fmt: skip

    def check_create(self, decoded: Decoded) -> None:
        """TotalAmt and CustomerRef are required, as QuickBooks requires them."""
        for attr in ("amount", "customer"):
            if attr not in decoded.provided:
                raise ValidationFailed(fields={attr: "can't be blank"})

    def list_params(self, invoice: str) -> dict[str, str]:
        statement = (
            f"SELECT * FROM Payment WHERE Line.LinkedTxn.TxnId = '{invoice}' MAXRESULTS 1000"
        )
        return {"query": statement}


def _version_of(token: object) -> int | None:
    try:
        return _values.parse_integer(str(token)) if token is not None else None
    except _values.ValueProblem:
        return None


class QuickBooksSearch:
    """Op.SEARCH: the query language, read into the store's part of the search; the
    grouping, ordering and paging are the plan's (`Grouping.encode_result`)."""

    def __init__(self, dialect: QuickBooks) -> None:
        self.dialect = dialect

    def read_search(self, query: Mapping[str, str], headers: Mapping[str, str]) -> PaymentQuery:
        return self.plan(query.get("query", "")).search()

    def plan(self, statement: str) -> Plan:
        return quickbooks_query.read(statement, self.dialect.parse_id)


# --- the grouped operations ------------------------------------------------------------------

_VOID = "void"


class QuickBooksGroups:
    """How the gateway's grouped operations read and answer QuickBooks' documents."""

    def __init__(self, dialect: QuickBooks) -> None:
        self.dialect = dialect

    def read_write(
        self, fmt: Literal["xml", "json"], body: bytes, query: Mapping[str, str]
    ) -> GroupWrite:
        """A POST to the payment collection: what its query and body ask.

        `operation=delete` deletes; `operation=void`, `include=void` (with or without
        `operation=update`) voids; otherwise a body with an `Id` updates (sparse when it
        says `"sparse": true`), and one without creates."""
        codec = self.dialect.codecs[fmt]
        operation = query.get("operation", "").strip().lower()
        include = query.get("include", "").strip().lower()
        if operation not in ("", "create", "update", "delete", "void"):
            raise NoRoute(f"Operation {operation} is not supported.")
        if include not in ("", _VOID):
            raise NoRoute(f"Operation include={include} is not supported.")
        request = codec.decode_payment(body)
        text = (request.ids or {}).get("id")
        group_id = self.dialect.parse_id(text) if text is not None else None
        if text is not None and group_id is None:
            raise NotFound("Payment not found")
        if operation == "delete" or operation == _VOID or include == _VOID:
            if group_id is None:
                raise ValidationFailed(fields={"id": "can't be blank"})
            action: Literal["delete", "void"] = "delete" if operation == "delete" else "void"
            return GroupWrite(action, group_id, self._version(request), request)
        if group_id is None:
            if operation == "update":
                raise ValidationFailed(fields={"id": "can't be blank"})
            self.dialect.check_create(request)
            if not request.allocations:
                raise Unapplied("A payment must be applied to invoices (Line.LinkedTxn): "
                                "the ledger keeps no unapplied money")  # fmt: skip
            return GroupWrite("create", None, None, request)
        sparse = str(request.options.get("sparse", "false")).lower() == "true"
        return GroupWrite("update", group_id, self._version(request), request, replace=not sparse)

    def _version(self, request: Decoded) -> int:
        token = request.options.get("SyncToken")
        if token is None:
            raise ValidationFailed(fields={"version": "can't be blank"})
        try:
            return _values.parse_integer(str(token))
        except _values.ValueProblem:
            raise ValidationFailed(fields={"version": "is not a valid SyncToken"}) from None

    def encode_group(
        self, fmt: Literal["xml", "json"], payments: Sequence[Payment], warnings: list[str],
        facts: Facts,
    ) -> bytes:  # fmt: skip
        codec = self.dialect.codecs[fmt]
        assert isinstance(codec, QuickBooksCodec)
        return codec.encode_group(payments, warnings, facts)

    def encode_deleted(self, fmt: Literal["xml", "json"], group_id: int) -> bytes:
        codec = self.dialect.codecs[fmt]
        assert isinstance(codec, QuickBooksCodec)
        return codec.write_deleted(self.dialect.wire_id(group_id))

    def delete_request(
        self, fmt: Literal["xml", "json"], group_id: str, version: int | None
    ) -> tuple[dict[str, str], bytes]:
        codec = self.dialect.codecs[fmt]
        assert isinstance(codec, QuickBooksCodec)
        token = str(version or 0)
        return {"operation": "delete"}, codec.write_request({"Id": group_id, "SyncToken": token})

    def read_query(self, statement: str) -> tuple[PaymentQuery, Plan]:
        plan = self.dialect.search.plan(statement)
        return plan.search(voided=True), plan

    def encode_result(
        self, fmt: Literal["xml", "json"], payments: Sequence[Payment], plan: Any,
        warnings: list[str], facts: Facts,
    ) -> bytes:  # fmt: skip
        codec = self.dialect.codecs[fmt]
        assert isinstance(codec, QuickBooksCodec)
        shown = [p for p in payments if p.deleted_at is None or p.voided]
        return codec.encode_result(shown, plan, warnings, facts)


# --- configuration --------------------------------------------------------------------------


class QuickBooksClient(Strict):
    client_id: str
    secret: str = Field(description="scrypt hash (`python -m gateway hash-secret`) or plain")
    refresh_token: str | None = Field(
        default=None, description="the refresh token the app trades for access tokens"
    )
    name: str = ""
    public_key: str | None = Field(
        default=None, description="PEM of an ES256 key the app may sign its own tokens with"
    )


class QuickBooksAuth(Section):
    """The tenant as a QuickBooks company: its realm id, and the apps connected to it."""

    realm_id: str = Field(description="the company's realm id, a digit string")
    clients: tuple[QuickBooksClient, ...] = ()
    routing = ("realm_id", "clients.*.client_id")

    @field_validator("realm_id")
    @classmethod
    def _digits(cls, value: str) -> str:
        if _values.ascii_number(value, digits=19) is None:
            raise ValueError("realm_id must be a digit string")
        return value

    def credentials(self) -> tuple[Credential, ...]:
        return tuple(
            Credential(
                client.secret,
                client.name or client.client_id,
                label=client.client_id,
                login=client.client_id,
                app=client.client_id,
                scope=self.realm_id,
                public_key=client.public_key,
                grant=client.refresh_token,
            )
            for client in self.clients
        )


class QuickBooksBackend(BackendConfig):
    """A QuickBooks backend: an app's credentials and refresh token, the company's realm,
    and the customer a create names (QuickBooks requires one; the caller may give its own)."""

    dialect: Literal["quickbooks"]
    client_id: str | None = None
    client_secret: str | None = None
    refresh_token: str | None = None
    realm_id: str | None = None
    customer: str | None = Field(
        default=None, description="CustomerRef of a create whose caller names no customer"
    )
    needs = ("client_id", "client_secret", "refresh_token", "realm_id")

    def client_auth(self) -> ClientAuth:
        headers = {
            **basic_header(self.client_id or "", self.client_secret or ""),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        from urllib.parse import urlencode

        body = urlencode({"grant_type": "refresh_token",
                          "refresh_token": self.refresh_token or ""}).encode()  # fmt: skip
        return TokenGrant(TOKEN_PATH, body, headers, oauth.token_from)

    def path_values(self) -> dict[str, str]:
        return {"realmId": self.realm_id or ""}

    def create_defaults(self) -> dict[str, Any]:
        return {"customer": self.customer} if self.customer else {}


# --- OAuth 2.0: the token endpoint and the discovery document ----------------------------------


def _read_client(body: bytes, headers: Mapping[str, str]) -> tuple[str, str]:
    """A `refresh_token` grant: the app's id and secret, in Basic (or in the form, as
    `client_secret_post`). Other grants are refused: `authorization_code` needs a
    person to consent in a browser, which the gateway has no page for."""
    form = oauth.read_form(body, "refresh_token")
    if not form.get("refresh_token"):
        raise oauth.OAuthRefused("invalid_request", "refresh_token is missing")
    return oauth.client_of(form, headers)


def _check_grant(body: bytes, credential: Credential) -> None:
    """The refresh token presented must be the app's."""
    presented = oauth.read_form(body, "refresh_token").get("refresh_token", "")
    held = credential.grant
    if not held or not hmac.compare_digest(presented.encode(), held.encode()):
        raise oauth.OAuthRefused("invalid_grant", "the refresh token is not valid for this client")


def _token_error(error: GatewayError) -> Reply | None:
    """OAuth 2.0's error answers (RFC 6749 section 5.2); the rest are Faults."""
    return oauth.token_error(error, "oauth2")


SCOPE = "com.intuit.quickbooks.accounting"
REFRESH_LIFETIME = 8726400


def _token_claims(credential: Credential) -> dict[str, Any]:
    return {"realm_id": credential.scope, "scope": SCOPE}


def _token_answer(token: str, credential: Credential, lifetime: int) -> tuple[int, str, bytes]:
    data = {
        "token_type": "bearer",
        "access_token": token,
        "refresh_token": credential.grant,
        "expires_in": lifetime,
        "x_refresh_token_expires_in": REFRESH_LIFETIME,
    }
    return 200, "application/json", _json.dumps(data)


def _discovery(base: str) -> tuple[int, str, bytes]:
    """The OpenID discovery document intuit-oauth's AuthClient reads when it is made:
    where the token endpoint is. The gateway serves no authorization page, user info or
    revocation; those entries name paths under it that answer QuickBooks' 400."""
    document = {
        "issuer": base,
        "authorization_endpoint": f"{base}/oauth2/v1/authorize",
        "token_endpoint": f"{base}{TOKEN_PATH}",
        "userinfo_endpoint": f"{base}/oauth2/v1/userinfo",
        "revocation_endpoint": f"{base}/oauth2/v1/tokens/revoke",
        "jwks_uri": f"{base}/oauth2/v1/keys",
        "response_types_supported": ["code"],
        "grant_types_supported": ["refresh_token"],
        "scopes_supported": [SCOPE],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    }
    return 200, "application/json", _json.dumps(document)


TOKEN_PATH = "/oauth2/v1/tokens/bearer"
DISCOVERY_PATH = "/.well-known/openid_configuration"
COMPANY = "/v3/company/{realmId}"

_DIALECT = QuickBooks()

UNIT = DialectUnit(
    codec=_DIALECT,
    routes=(
        Route("GET", COMPANY + "/payment/{payment_id}", Op.GET),
        Route("POST", COMPANY + "/payment", Op.WRITE),
        Route("GET", COMPANY + "/query", Op.SEARCH, query_body="query"),
        Route("POST", COMPANY + "/query", Op.SEARCH, query_body="query"),
    ),
    prefixes=("/v3/", "/oauth2/", DISCOVERY_PATH),
    caller_auth=BearerAuth(
        "quickbooks",
        scope=("path", "realmId"),
        scope_claim="realm_id",
        invalid="AuthenticationErrorGeneral: SRV-110-Authentication Failure",
        forbidden="AuthorizationFailed: this token does not open that company",
        expired=lambda moment: f"Token expired: {moment:%Y-%m-%dT%H:%M:%SZ}",
    ),
    token_endpoint=TokenEndpoint(
        TOKEN_PATH,
        _read_client,
        _token_claims,
        _token_answer,
        body_format="form",
        invalid="invalid_client",
        error=_token_error,
        check=_check_grant,
    ),  # fmt: skip
    documents=(Document("GET", DISCOVERY_PATH, _discovery),),
    groups=QuickBooksGroups(_DIALECT),
    section=QuickBooksAuth,
    backend=QuickBooksBackend,
    vendor=("quickbooks", "intuit"),
    testing="dialects.testing.quickbooks",
    idempotency_query="requestid",
)
