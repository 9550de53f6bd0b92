"""Xero's list query: `where` filters, `order`, and `page`/`pageSize`, read into a PaymentQuery.

`where` takes clauses joined by `AND` (or `&&`), each on any element of a payment
(`Field`: a dotted wire name) compared with `== != > >= < <=` to a quoted string, a
number, `true`/`false`, `guid("…")` or `DateTime(2020, 01, 01)` (or a quoted date),
or tested with `Field.Contains("…")`, `.StartsWith("…")` or `.EndsWith("…")`. Several
`PaymentID`, `Invoice.InvoiceID` or `Invoice.InvoiceNumber` equalities may be joined
by `OR`. `If-Modified-Since` keeps the payments changed since that instant.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import Any

from . import _values
from .errors import BadQuery, BadRequest
from .model import COMPARISONS, Payment, PaymentQuery

_CLAUSE = re.compile(
    r"\s*(?P<field>[A-Za-z][A-Za-z.]*?)\s*(?:(?P<op>==|!=|>=|<=|>|<)\s*(?P<value>"
    r"[Gg]uid\(\s*\"[^\"]*\"\s*\)|DateTime\([0-9,\s]*\)|\"[^\"]*\"|-?[0-9]+(?:\.[0-9]+)?|true|false)"
    r"|\.(?P<method>Contains|StartsWith|EndsWith)\(\s*(?P<text>\"[^\"]*\")\s*\))\s*"
)
_JOIN = re.compile(r"\s+AND\s+|\s*&&\s*", re.IGNORECASE)
_OR = re.compile(r"\s+OR\s+|\s*\|\|\s*", re.IGNORECASE)
_ORDERABLE = {
    "Date": "paid_at",
    "Amount": "amount",
    "UpdatedDateUTC": "updated_at",
    "PaymentID": "id",
    "Reference": "notes",
}
# Fields the store selects on (ids, invoice numbers): equality only, OR-lists allowed.
_SELECTED = ("Invoice.InvoiceID", "PaymentID", "Invoice.InvoiceNumber")
_TESTS: dict[str, Callable[[str, str], bool]] = {
    "Contains": str.__contains__,
    "StartsWith": str.startswith,
    "EndsWith": str.endswith,
}
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
# A payment's element by wire name, as a value a where clause compares: its kind
# (how a literal is read: "amount", "moment", "text" or "flag") and how to get it.
Element = tuple[str, Callable[[Payment], object]]
Test = Callable[[Payment], bool]


def read(
    query: Mapping[str, str],
    parse_id: Callable[[object], int | None],
    elements: Mapping[str, Element],
    modified_since: datetime | None = None,
) -> PaymentQuery:
    """The search `query` asks for; ids are read with the dialect's `parse_id`, other
    fields through `elements`. Deleted payments are listed, with their status."""
    found: dict[str, list[Any]] = {}
    tests: list[Test] = []
    where = query.get("where", "").strip()
    if where:
        for clause in _JOIN.split(where):
            _clause(clause, found, tests, parse_id, elements)
    order = _order(query.get("order", ""))
    page = _number(query, "page", 1) if "page" in query else None
    size = _number(query, "pageSize", DEFAULT_PAGE_SIZE) if "pageSize" in query else None
    return PaymentQuery(
        invoice_ids=_ids(found.get("Invoice.InvoiceID")),
        payment_ids=_ids(found.get("PaymentID")),
        invoice_numbers=_ids(found.get("Invoice.InvoiceNumber")),
        paid=tuple(found.get("Date", ())),
        deleted=True,
        modified_since=modified_since,
        where=_all(tests) if tests else None,
        order=order or PaymentQuery.order,
        page=page,
        page_size=min(max(size or DEFAULT_PAGE_SIZE, 1), MAX_PAGE_SIZE),
    )


def _all(tests: list[Test]) -> Test:
    return lambda payment: all(test(payment) for test in tests)


def _clause(
    text: str,
    found: dict[str, list[Any]],
    tests: list[Test],
    parse_id: Callable[[object], int | None],
    elements: Mapping[str, Element],
) -> None:
    text = text.strip()
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1]
    alternatives = _OR.split(text)
    matches = [_CLAUSE.fullmatch(a) for a in alternatives]
    if not all(matches):
        raise BadQuery(f"The where clause {text.strip()!r} cannot be read")
    fields = {m["field"] for m in matches if m}
    if len(fields) != 1:
        raise BadQuery(f"OR joins clauses on one field only: {text.strip()!r}")
    field = fields.pop()
    if len(matches) > 1 and field not in _SELECTED:
        raise BadQuery(f"OR is not supported on {field}")
    for match in matches:
        assert match is not None
        if match["method"]:
            tests.append(_text_test(field, match["method"], _quoted(match["text"]), elements))
        else:
            _condition(field, match["op"], match["value"], found, tests, parse_id, elements)


def _condition(
    field: str,
    op: str,
    value: str,
    found: dict[str, list[Any]],
    tests: list[Test],
    parse_id: Callable[[object], int | None],
    elements: Mapping[str, Element],
) -> None:
    if field in _SELECTED:
        if op != "==" or not value.startswith(('"', "guid", "Guid")):
            raise BadQuery(f"{field} is compared with == only")
        text = _quoted(value)
        if field == "Invoice.InvoiceNumber":
            found.setdefault(field, []).append(text)
        else:
            found.setdefault(field, []).append(parse_id(text) or 0)  # no such id: no match
        return
    if field == "Date":
        found.setdefault("Date", []).append((op, _moment(value)))
        return
    kind, get = _element(field, elements)
    wanted = _literal(field, kind, value)
    compare = COMPARISONS[op]
    if kind == "flag" and op not in ("==", "!="):
        raise BadQuery(f"{field} is compared with == or != only")

    def test(payment: Payment) -> bool:
        have = get(payment)
        if have is None or wanted is None:
            return op == "!=" and have is not wanted
        try:
            return bool(compare(have, wanted))
        except TypeError:
            return False

    tests.append(test)


def _text_test(field: str, method: str, wanted: str, elements: Mapping[str, Element]) -> Test:
    kind, get = _element(field, elements)
    if kind != "text":
        raise BadQuery(f"{method} applies to text, and {field} is not text")
    check = _TESTS[method]

    def test(payment: Payment) -> bool:
        have = get(payment)
        return isinstance(have, str) and check(have, wanted)

    return test


def _element(field: str, elements: Mapping[str, Element]) -> Element:
    found = elements.get(field)
    if found is None:
        raise BadQuery(f"No property or field '{field}' exists in type 'Payment'")
    return found


def _literal(field: str, kind: str, value: str) -> object:
    """A where clause's value as the element's kind compares it."""
    try:
        if kind == "amount":
            return Decimal(_quoted(value) if value.startswith('"') else value)
        if kind == "moment":
            return _moment(value)
        if kind == "flag" and value in ("true", "false"):
            return value == "true"
        if kind == "text" and value.startswith('"'):
            return _quoted(value)
        if kind == "text" and value[:4] in ("guid", "Guid"):
            return _quoted(value).lower()
    except InvalidOperation as exc:
        raise BadQuery(f"{value} is not a number, as {field} is compared") from exc
    raise BadQuery(f"{value} is not a value {field} can be compared with")


def _quoted(value: str) -> str:
    return value[value.index('"') + 1 : value.rindex('"')]


def _moment(value: str) -> datetime:
    try:
        if value.startswith("DateTime("):
            texts = [p.strip() for p in value[9:-1].split(",")]
            parts = [_values.ascii_number(p, digits=4) for p in texts if p]
            numbers = [p for p in parts if p is not None]
            if len(numbers) < len(parts) or not 3 <= len(numbers) <= 6:
                raise BadQuery(f"{value} is not a date")
            return _values.moment(*numbers)
        return _values.parse_datetime(_quoted(value))
    except (_values.ValueProblem, ValueError) as exc:
        raise BadQuery(f"{value} is not a date") from exc


def _ids(values: list[Any] | None) -> tuple[Any, ...] | None:
    return tuple(values) if values is not None else None


def modified_since(header: str | None) -> datetime | None:
    """`If-Modified-Since` as Xero's clients send it: RFC 1123 (`Wed, 01 Jan 2020
    00:00:00 GMT`), or ISO 8601 with or without a zone (none: UTC)."""
    if header is None or not header.strip():
        return None
    text = header.strip()
    try:
        if text[:1].isalpha():
            moment = parsedate_to_datetime(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return moment.astimezone(UTC)
        return _values.parse_datetime(text)
    except (ValueError, TypeError, OverflowError, _values.ValueProblem) as exc:
        raise BadRequest(f"If-Modified-Since {text!r} is not a date and time") from exc


def _order(text: str) -> tuple[tuple[str, bool], ...]:
    order = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, direction = part.partition(" ")
        attr = _ORDERABLE.get(name)
        if attr is None or direction.strip().upper() not in ("", "ASC", "DESC"):
            raise BadQuery(f"Cannot order by {part!r}")
        order.append((attr, direction.strip().upper() == "DESC"))
    return tuple(order)


def _number(query: Mapping[str, str], name: str, default: int) -> int:
    text = query.get(name, "").strip()
    if not text:
        return default
    number = _values.ascii_number(text, digits=9)
    if number is None:
        raise BadQuery(f"{name} must be a whole number")
    return max(number, 1)
