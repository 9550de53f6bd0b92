"""QuickBooks Online's query language for payments, read into a plan over whole payments.

    SELECT * | COUNT(*) FROM Payment
      [WHERE cond [AND cond]...]
      [ORDERBY | ORDER BY field [ASC | DESC] [, ...]]
      [STARTPOSITION n] [MAXRESULTS n]

Keywords, the entity and field names are read in any case, white space may be doubled.
A condition compares a field with `= < > <= >=`, `IN (v, ...)` or `LIKE` (`%` the one
wildcard) to a quoted string (`\\'` escapes a quote), a number or `true`/`false`. The
fields: `Id`, `TxnDate`, `TotalAmt`, `CustomerRef`, `PaymentRefNum`,
`MetaData.CreateTime`, `MetaData.LastUpdatedTime`, and `Line.LinkedTxn.TxnId` (the
gateway's own: the payments applied to an invoice, which QuickBooks reads from the
invoice instead).

A statement that cannot be read is `QueryUnreadable` (QuickBooks' 4000), one naming
what a payment has not, or a value of the wrong kind, `QueryInvalid` (4001). A
payment here is a group of allocations (`Group`): its total, its dates and its
invoices are the group's, so conditions on them are tested per group, after the
store has selected what it can (ids, customers, references).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from . import _values
from .errors import BadQuery
from .model import Payment, PaymentQuery

MAX_RESULTS = 1000
DEFAULT_RESULTS = 100


class QueryUnreadable(BadQuery):
    """QuickBooks' 4000: the statement cannot be parsed."""

    code = "4000"
    default_message = "Error parsing query"


class QueryInvalid(BadQuery):
    """QuickBooks' 4001: the statement parses but asks what cannot be answered."""

    code = "4001"
    default_message = "Invalid query"


@dataclass(frozen=True)
class Group:
    """One whole payment: its allocations (rows sharing a group id), in id order."""

    id: int
    allocations: tuple[Payment, ...]

    @property
    def first(self) -> Payment:
        return self.allocations[0]

    @property
    def live(self) -> tuple[Payment, ...]:
        return tuple(p for p in self.allocations if p.deleted_at is None)

    @property
    def total(self) -> Decimal:
        return sum((p.amount or Decimal(0) for p in self.live), Decimal("0.00"))

    @property
    def created_at(self) -> datetime | None:
        found = [p.created_at for p in self.allocations if p.created_at is not None]
        return min(found) if found else None

    @property
    def updated_at(self) -> datetime | None:
        found = [p.updated_at for p in self.allocations if p.updated_at is not None]
        found += [p.deleted_at for p in self.allocations if p.deleted_at is not None]
        return max(found) if found else None


def groups_of(payments: Sequence[Payment]) -> list[Group]:
    """Allocations gathered into their payments, in order of first appearance."""
    found: dict[object, list[Payment]] = {}
    for place, payment in enumerate(payments):
        # A payment of no group (one no store wrote) stands alone.
        key = payment.group_id if payment.group_id is not None else ("alone", place)
        found.setdefault(key, []).append(payment)
    return [
        Group(group_id(rows[0]), tuple(sorted(rows, key=lambda p: p.id or 0)))
        for rows in found.values()
    ]


def group_id(payment: Payment) -> int:
    """The whole payment an allocation belongs to (its own id where it stands alone)."""
    return payment.group_id or payment.id or 0


# --- the statement's tokens ---------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:\\.|[^'\\])*')|(?P<number>-?[0-9]+(?:\.[0-9]+)?)"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)"
    r"|(?P<op><=|>=|<>|!=|=|<|>)|(?P<punct>[(),*]))"
)


@dataclass(frozen=True)
class Token:
    kind: str  # string, number, word, op, punct
    text: str

    @property
    def upper(self) -> str:
        return self.text.upper()


def tokens(statement: str) -> list[Token]:
    found: list[Token] = []
    at = 0
    text = statement.rstrip()
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None or match.end() == at:
            raise QueryUnreadable(f"Error parsing query: unexpected text at {text[at:][:30]!r}")
        kind = match.lastgroup
        assert kind is not None
        value = match.group(kind)
        if kind == "string":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        found.append(Token(kind, value))
        at = match.end()
    return found


# --- the plan -----------------------------------------------------------------------------

# Field (upper case) -> (wire name, kind of value).
_FIELDS = {
    "ID": ("Id", "id"),
    "TXNDATE": ("TxnDate", "date"),
    "TOTALAMT": ("TotalAmt", "amount"),
    "CUSTOMERREF": ("CustomerRef", "text"),
    "PAYMENTREFNUM": ("PaymentRefNum", "text"),
    "METADATA.CREATETIME": ("MetaData.CreateTime", "moment"),
    "METADATA.LASTUPDATEDTIME": ("MetaData.LastUpdatedTime", "moment"),
    "LINE.LINKEDTXN.TXNID": ("Line.LinkedTxn.TxnId", "id"),
}
_SORTABLE = ("ID", "TXNDATE", "TOTALAMT", "PAYMENTREFNUM", "METADATA.CREATETIME",
             "METADATA.LASTUPDATEDTIME", "CUSTOMERREF")  # fmt: skip
_OPS = ("=", "<", ">", "<=", ">=", "IN", "LIKE")


@dataclass(frozen=True)
class Condition:
    field: str  # upper-case name, a key of _FIELDS
    op: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Plan:
    """What a statement asks: a count or the payments, which, in what order, which page."""

    count: bool
    conditions: tuple[Condition, ...] = ()
    order: tuple[tuple[str, bool], ...] = ()
    start: int = 1
    max_results: int = DEFAULT_RESULTS

    def search(self, **extra: Any) -> PaymentQuery:
        """The store's part of the search: the allocations of the payments it can select
        (by id, customer, reference, invoice); the rest is tested per payment here."""
        selected: dict[str, Any] = {}
        for condition in self.conditions:
            if condition.op not in ("=", "IN"):
                continue
            if condition.field == "ID":
                selected["group_ids"] = _narrow(selected.get("group_ids"), condition.values)
            elif condition.field == "CUSTOMERREF":
                selected["customers"] = _narrow(selected.get("customers"), condition.values)
            elif condition.field == "PAYMENTREFNUM":
                selected["references"] = _narrow(selected.get("references"), condition.values)
            elif condition.field == "LINE.LINKEDTXN.TXNID":
                selected["invoice_ids"] = _narrow(selected.get("invoice_ids"), condition.values)
        known = PaymentQuery.__dataclass_fields__
        usable = {k: v for k, v in {**selected, **extra}.items() if k in known}
        return PaymentQuery(order=(("id", False),), **usable)

    def select(self, groups: Sequence[Group]) -> tuple[list[Group], int]:
        """The payments the statement selects, ordered, and the page it asks for; and
        how many were selected in all."""
        tests = [_test(condition) for condition in self.conditions]
        kept = [group for group in groups if all(test(group) for test in tests)]
        kept.sort(key=lambda g: g.id)
        for name, descending in reversed(self.order):
            kept.sort(key=_sort_key(name), reverse=descending)
        first = self.start - 1
        return kept[first : first + self.max_results], len(kept)


def _narrow(current: tuple[Any, ...] | None, values: tuple[Any, ...]) -> tuple[Any, ...]:
    if current is None:
        return values
    return tuple(v for v in current if v in values)


def read(statement: str, parse_id: Callable[[object], int | None]) -> Plan:
    """The plan of a query statement; refused with QuickBooks' 4000 or 4001."""
    if not statement or not statement.strip():
        raise QueryUnreadable("Error parsing query: the query is empty")
    reader = _Reader(tokens(statement), parse_id)
    return reader.statement()


class _Reader:
    def __init__(self, found: list[Token], parse_id: Callable[[object], int | None]) -> None:
        self.found = found
        self.at = 0
        self.parse_id = parse_id

    def peek(self, offset: int = 0) -> Token | None:
        place = self.at + offset
        return self.found[place] if place < len(self.found) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise QueryUnreadable("Error parsing query: the query ends too early")
        self.at += 1
        return token

    def keyword(self, *words: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "word" and token.upper in words:
            self.at += 1
            return True
        return False

    def expect(self, word: str) -> None:
        token = self.take()
        if token.upper != word:
            raise QueryUnreadable(f"Error parsing query: expected {word}, found {token.text!r}")

    def statement(self) -> Plan:
        self.expect("SELECT")
        token = self.take()
        if token.text == "*":
            count = False
        elif token.upper == "COUNT":
            for expected in ("(", "*", ")"):
                if self.take().text != expected:
                    raise QueryUnreadable("Error parsing query: expected COUNT(*)")
            count = True
        else:
            raise QueryInvalid("Invalid query: only SELECT * and SELECT COUNT(*) are supported")
        self.expect("FROM")
        entity = self.take()
        if entity.kind != "word":
            raise QueryUnreadable("Error parsing query: expected an entity after FROM")
        if entity.upper != "PAYMENT":
            raise QueryInvalid(f"Invalid query: {entity.text} is not queried here (only Payment)")
        conditions: list[Condition] = []
        if self.keyword("WHERE"):
            conditions.append(self.condition())
            while self.keyword("AND"):
                conditions.append(self.condition())
            if self.keyword("OR"):
                raise QueryUnreadable("Error parsing query: OR is not supported")
        order: list[tuple[str, bool]] = []
        if self.keyword("ORDERBY") or (self.keyword("ORDER") and self._by()):
            order.append(self.sort())
            while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
                self.at += 1
                order.append(self.sort())
        start, max_results = 1, DEFAULT_RESULTS
        if self.keyword("STARTPOSITION"):
            start = self.whole("STARTPOSITION", least=1)
        if self.keyword("MAXRESULTS"):
            max_results = min(self.whole("MAXRESULTS", least=1), MAX_RESULTS)
        leftover = self.peek()
        if leftover is not None:
            raise QueryUnreadable(f"Error parsing query: unexpected {leftover.text!r}")
        return Plan(count, tuple(conditions), tuple(order), start, max_results)

    def _by(self) -> bool:
        self.expect("BY")
        return True

    def name(self) -> str:
        token = self.take()
        if token.kind != "word":
            raise QueryUnreadable(f"Error parsing query: expected a field, found {token.text!r}")
        if token.upper not in _FIELDS:
            raise QueryInvalid(f"Invalid query: property {token.text} is not queryable on Payment")
        return token.upper

    def sort(self) -> tuple[str, bool]:
        name = self.name()
        if name not in _SORTABLE:
            raise QueryInvalid(f"Invalid query: Payment cannot be sorted by {_FIELDS[name][0]}")
        if self.keyword("DESC"):
            return name, True
        self.keyword("ASC")
        return name, False

    def whole(self, what: str, *, least: int) -> int:
        token = self.take()
        number = _values.ascii_number(token.text) if token.kind == "number" else None
        if number is None or number < least:
            raise QueryInvalid(f"Invalid query: {what} must be a whole number of at least {least}")
        return number

    def condition(self) -> Condition:
        name = self.name()
        op_token = self.take()
        op = op_token.upper
        if op not in _OPS:
            raise QueryUnreadable(f"Error parsing query: unknown operator {op_token.text!r}")
        if op == "IN":
            if self.take().text != "(":
                raise QueryUnreadable("Error parsing query: IN takes a list in parentheses")
            values = [self.value(name)]
            while (token := self.take()).text == ",":
                values.append(self.value(name))
            if token.text != ")":
                raise QueryUnreadable("Error parsing query: IN's list is not closed")
            return Condition(name, op, tuple(values))
        if op == "LIKE":
            token = self.take()
            if token.kind != "string" or _FIELDS[name][1] not in ("text", "id"):
                raise QueryInvalid(f"Invalid query: LIKE takes {_FIELDS[name][0]} and a string")
            pattern = ".*".join(re.escape(part) for part in token.text.split("%"))
            return Condition(name, op, (re.compile(pattern, re.IGNORECASE | re.DOTALL),))
        return Condition(name, op, (self.value(name),))

    def value(self, name: str) -> Any:
        token = self.take()
        if token.kind not in ("string", "number", "word"):
            raise QueryUnreadable(f"Error parsing query: expected a value, found {token.text!r}")
        wire, kind = _FIELDS[name]
        text = token.text
        try:
            if kind == "id":
                number = self.parse_id(text.strip())
                return number if number is not None else -1  # an id no payment has
            if kind == "amount":
                return _values.parse_amount(text)
            if kind == "date":
                return _values.parse_date(text)
            if kind == "moment":
                return _values.parse_datetime(text)
        except _values.ValueProblem as exc:
            raise QueryInvalid(f"Invalid query: {wire} {exc}: {text!r}") from exc
        return text


# --- testing a group against a condition ---------------------------------------------------

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}


def _values_of(name: str, group: Group) -> list[Any]:
    """What a group holds for a field (several for its invoices), None where unset."""
    first = group.first
    if name == "ID":
        return [group.id]
    if name == "TXNDATE":
        return [first.paid_at.date() if first.paid_at else None]
    if name == "TOTALAMT":
        return [group.total]
    if name == "CUSTOMERREF":
        return [first.customer]
    if name == "PAYMENTREFNUM":
        return [first.reference]
    if name == "METADATA.CREATETIME":
        return [group.created_at]
    if name == "METADATA.LASTUPDATEDTIME":
        return [group.updated_at]
    return [p.invoice_id for p in group.live]


def _test(condition: Condition) -> Callable[[Group], bool]:
    name, op, values = condition.field, condition.op, condition.values

    def test(group: Group) -> bool:
        held = [value for value in _values_of(name, group) if value is not None]
        if op == "IN":
            return any(value in values for value in held)
        if op == "LIKE":
            return any(values[0].fullmatch(str(value)) for value in held)
        wanted = values[0]
        compare = _COMPARE[op]
        return any(compare(_comparable(value, wanted), wanted) for value in held)

    return test


def _comparable(value: Any, wanted: Any) -> Any:
    """A moment compared with a date is compared by its date."""
    if isinstance(value, datetime) and type(wanted) is date:
        return value.date()
    return value


def _sort_key(name: str) -> Callable[[Group], Any]:
    def key(group: Group) -> Any:
        value = _values_of(name, group)[0]
        return (value is not None, value if value is not None else 0)

    return key
