"""Xero's list query: `where` filters, `order`, and `page`/`pageSize`, read into a PaymentQuery.

`where` takes clauses joined by `AND` (or `&&`): `Invoice.InvoiceID==guid("…")` and
`PaymentID==guid("…")` (several joined by `OR`), `Status=="AUTHORISED"`, and
`Date` compared with `DateTime(2020, 01, 01)` or a quoted date by `== != > >= < <=`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime

from . import _values
from .errors import BadQuery
from .model import PaymentQuery

_CLAUSE = re.compile(
    r"\s*(?P<field>[A-Za-z.]+)\s*(?P<op>==|!=|>=|<=|>|<)\s*(?P<value>"
    r"[Gg]uid\(\s*\"[^\"]*\"\s*\)|DateTime\([0-9,\s]*\)|\"[^\"]*\")\s*"
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
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100


def read(query: Mapping[str, str], parse_id: Callable[[object], int | None]) -> PaymentQuery:
    """The search `query` asks for; ids are read with the dialect's `parse_id`."""
    found: dict[str, object] = {}
    where = query.get("where", "").strip()
    if where:
        for clause in _JOIN.split(where):
            _clause(clause, found, parse_id)
    order = _order(query.get("order", ""))
    page = _number(query, "page", 1) if "page" in query else None
    size = _number(query, "pageSize", DEFAULT_PAGE_SIZE) if "pageSize" in query else None
    return PaymentQuery(
        invoice_ids=_ids(found.get("Invoice.InvoiceID")),
        payment_ids=_ids(found.get("PaymentID")),
        paid=tuple(found.get("Date", ())),  # type: ignore[arg-type]
        deleted=found.get("Status") == "DELETED",
        order=order or PaymentQuery.order,
        page=page,
        page_size=min(max(size or DEFAULT_PAGE_SIZE, 1), MAX_PAGE_SIZE),
    )


def _clause(text: str, found: dict[str, object], parse_id: Callable[[object], int | None]) -> None:
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
    if len(matches) > 1 and field not in ("Invoice.InvoiceID", "PaymentID"):
        raise BadQuery(f"OR is not supported on {field}")
    for match in matches:
        assert match is not None
        _condition(field, match["op"], match["value"], found, parse_id)


def _condition(
    field: str,
    op: str,
    value: str,
    found: dict[str, object],
    parse_id: Callable[[object], int | None],
) -> None:
    if field in ("Invoice.InvoiceID", "PaymentID"):
        if op != "==":
            raise BadQuery(f"{field} is compared with == only")
        number = parse_id(_quoted(value))
        ids = found.setdefault(field, [])
        assert isinstance(ids, list)
        ids.append(number or 0)  # no such id: matches nothing
    elif field == "Status":
        status = _quoted(value)
        if op != "==" or status not in ("AUTHORISED", "DELETED"):
            raise BadQuery('Status is compared as Status=="AUTHORISED" or "DELETED"')
        found["Status"] = status
    elif field == "Date":
        dates = found.setdefault("Date", [])
        assert isinstance(dates, list)
        dates.append((op, _moment(value)))
    else:
        raise BadQuery(f"The field {field} cannot be filtered on")


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


def _ids(values: object) -> tuple[int, ...] | None:
    return tuple(values) if isinstance(values, list) else None


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
