"""Lists encoded straight from stored rows: per dialect, plans compiled from its field table.

A row is one payment as a store keeps it: a tuple of values in the order of the
columns (canonical attribute names) the dialect asked for. A value is canonical, or
in the form a store keeps it: an amount as its decimal text, a moment as its ISO text
(`datetime.isoformat()`), the method as its canonical word, a flag as 0 or 1. So a
list is encoded without building a Payment, a Decimal or a datetime per row: each
field reads its column(s) and renders through the same dialect methods a single
payment's answer uses, remembering the renderings of values that repeat (amounts,
the invoice id, method words, computed fields).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from datetime import datetime
from decimal import Decimal
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from .model import Method, Payment, stored_payment

if TYPE_CHECKING:
    from .base import Dialect, Spec

Row = tuple[Any, ...]
Convert = Callable[[Any], Any]
# A value's final form (a JSON value, an XML line) from the native value of its field.
Finish = Callable[[object], object]

PAYMENT_FIELDS = tuple(Payment.model_fields)
_MONEY = frozenset({"amount", "tax_withheld", "fee"})
_MOMENTS = frozenset({"paid_at", "created_at", "updated_at"})
_MEMO_SIZE = 4096  # distinct values remembered per field before starting afresh
_UNSEEN = object()  # a miss is common (creation times): no exception for it


def canonical(attr: str, value: Any) -> Any:
    """A stored value as the Payment attribute `attr` holds it."""
    if value is None:
        return None
    if attr in _MONEY:
        return Decimal(value)
    if attr in _MOMENTS:
        return datetime.fromisoformat(value) if isinstance(value, str) else value
    if attr == "method":
        return Method(value)
    if attr == "notify_customer":
        return bool(value)
    return value


def payment_of(columns: Sequence[str], row: Row) -> Payment:
    """The Payment a row holds (fields not among `columns` at their defaults)."""
    data = {attr: canonical(attr, value) for attr, value in zip(columns, row, strict=True)}
    if len(data) == len(PAYMENT_FIELDS):
        return stored_payment(data)
    return Payment.model_construct(**data)


def rows_of(payments: Sequence[Payment], columns: Sequence[str]) -> list[Row]:
    """Canonical payments as rows of `columns`."""
    read = itemgetter(*columns)
    return [_as_row(read(payment.__dict__), len(columns)) for payment in payments]


def _as_row(found: Any, width: int) -> Row:
    return tuple(found) if width > 1 else (found,)


def memo(convert: Convert, key: Callable[[Any], Hashable] | None = None) -> Convert:
    """`convert`, remembering its results by value (or by `key(value)`)."""
    seen: dict[Hashable, object] = {}

    def remember(found_key: Hashable, value: Any) -> object:
        if len(seen) >= _MEMO_SIZE:
            seen.clear()
        result = seen[found_key] = convert(value)
        return result

    if key is None:

        def by_value(value: Any) -> object:
            found = seen.get(value, _UNSEEN)
            return remember(value, value) if found is _UNSEEN else found

        return by_value
    by = key

    def by_key(value: Any) -> object:
        found_key = by(value)
        found = seen.get(found_key, _UNSEEN)
        return remember(found_key, value) if found is _UNSEEN else found

    return by_key


def _by_text(convert: Convert, others: Convert) -> Convert:
    """`convert` remembered by text values (how SQLite keeps amounts and moments) and
    None; any other value goes to `others`."""
    seen: dict[str | None, object] = {}

    def by_text(value: Any) -> object:
        if value is not None and not isinstance(value, str):
            return others(value)
        found = seen.get(value, _UNSEEN)
        if found is not _UNSEEN:
            return found
        if len(seen) >= _MEMO_SIZE:
            seen.clear()
        result = seen[value] = convert(value)
        return result

    return by_text


def _amounts(convert: Convert) -> Convert:
    """Decimals by their exact text: `100.0` and `100.00` are equal Decimals."""
    return _by_text(convert, memo(convert, str))


def _dates(convert: Convert) -> Convert:
    """Datetimes by instant and zone: equal instants in other zones are other dates."""
    return _by_text(convert, memo(convert, lambda moment: (moment, moment.utcoffset())))


class Field:
    """One shown field of a row plan: the columns it reads and how it renders them.

    `convert` None: the one column's value is the final form. `constant`: the field
    reads no column and always renders as `value`.
    """

    def __init__(
        self,
        spec: Spec,
        columns: tuple[str, ...],
        convert: Convert | None,
        *,
        constant: bool = False,
        value: object = None,
    ) -> None:
        self.spec = spec
        self.columns = columns
        self.convert = convert
        self.constant = constant
        self.value = value


# Builds a row's final form (a source expression) from its fields' (spec, expression).
Shape = Callable[[list[tuple["Spec", str]]], str]


class Plan:
    """A dialect's shown fields, the columns they read, and their warnings.

    `finish` gives per field what turns its native value into its final form (None: the
    native value is final); fields whose values repeat across rows remember their
    final forms. `encoder` compiles the fields into one function per row.
    """

    def __init__(self, dialect: Dialect, finish: Callable[[Spec], Finish | None]) -> None:
        self.dialect = dialect
        self.fields = [_field(dialect, spec, finish(spec)) for spec in dialect.shown]
        self.columns = tuple(dict.fromkeys(name for f in self.fields for name in f.columns))
        self._where = {name: index for index, name in enumerate(self.columns)}
        self._method = _method_getter(dialect, self._where)

    def encoder(self, shape: Shape) -> Callable[[Row], Any]:
        """A function from a row to its final form, compiled once: each field's column
        read inline, converted only where it needs it, constants made once."""
        names: dict[str, object] = {}
        parts: list[tuple[Spec, str]] = []
        for number, found in enumerate(self.fields):
            if found.constant:
                names[f"k{number}"] = found.value
                parts.append((found.spec, f"k{number}"))
                continue
            reads = [f"row[{self._where[name]}]" for name in found.columns]
            if found.convert is None:
                parts.append((found.spec, reads[0]))
                continue
            names[f"c{number}"] = found.convert
            argument = reads[0] if len(reads) == 1 else f"({', '.join(reads)},)"
            parts.append((found.spec, f"c{number}({argument})"))
        source = f"def encode(row):\n    return {shape(parts)}\n"
        exec(compile(source, f"<rows of {self.dialect.name}>", "exec"), names)  # noqa: S102
        encode: Callable[[Row], Any] = names["encode"]  # type: ignore[assignment]
        return encode

    def warnings(self, rows: Sequence[Row], warnings: list[str] | None) -> None:
        """The translation warnings the rows' methods cost, row by row (as one by one)."""
        if warnings is None or self._method is None:
            return
        read, warn = self._method
        for row in rows:
            warning = warn(read(row))
            if isinstance(warning, str):
                warnings.append(warning)


def _method_getter(
    dialect: Dialect, where: dict[str, int]
) -> tuple[Callable[[Row], Any], Convert] | None:
    from .base import Kind

    if not any(spec.kind is Kind.METHOD and spec.value is None for spec in dialect.shown):
        return None
    read = itemgetter(where["method"], where["method_label"], where["origin"])
    return read, memo(lambda found: _method_word(dialect, found)[1])


def _method_word(dialect: Dialect, found: tuple[Any, Any, Any]) -> tuple[str | None, str | None]:
    method, label, origin = found
    return dialect.word_for(canonical("method", method), label, origin)


def _field(dialect: Dialect, spec: Spec, finish: Finish | None) -> Field:
    from .base import Kind

    if spec.value is not None:
        return _computed(spec, finish)
    if spec.kind is Kind.METHOD:
        word = memo(lambda found: _finished(finish, _method_word(dialect, found)[0]))
        return Field(spec, (spec.attr, "method_label", "origin"), word)
    native = _native(dialect, spec)
    convert: Convert
    if native is None and finish is None:
        return Field(spec, (spec.attr,), None)
    if native is None:
        assert finish is not None
        convert = finish
    elif finish is None:

        def convert(value: Any) -> object:
            return None if value is None else native(value)

    else:

        def convert(value: Any) -> object:
            return finish(None if value is None else native(value))

    if spec.kind in (Kind.AMOUNT, Kind.MONEY):
        return Field(spec, (spec.attr,), _amounts(convert))
    if spec.kind in (Kind.DATE, Kind.DATETIME):  # payment dates repeat; creation times not
        return Field(spec, (spec.attr,), _dates(convert))
    if spec.kind in (Kind.INVOICE_ID, Kind.BOOL):  # one invoice a list; two flag values
        return Field(spec, (spec.attr,), memo(convert))
    return Field(spec, (spec.attr,), convert)


def _finished(finish: Finish | None, value: object) -> object:
    return value if finish is None else finish(value)


def _computed(spec: Spec, finish: Finish | None) -> Field:
    compute = spec.value
    assert compute is not None
    if spec.reads == ():
        return Field(spec, (), None, constant=True, value=_finished(finish, compute(Payment())))
    reads = spec.reads if spec.reads is not None else PAYMENT_FIELDS

    def convert(found: Any) -> object:
        values = found if len(reads) != 1 else (found,)
        return _finished(finish, compute(payment_of(reads, values)))

    return Field(spec, reads, memo(convert))


def _native(dialect: Dialect, spec: Spec) -> Convert | None:
    """A stored value (not None) to the dialect's native value, as its reader gives it
    (None: the value itself)."""
    from .base import Kind

    kind = spec.kind
    if kind in (Kind.ID, Kind.INVOICE_ID):
        return dialect.wire_id
    if kind in (Kind.AMOUNT, Kind.MONEY):
        return lambda value: dialect.number(Decimal(value))
    if kind is Kind.DATE:
        return lambda value: value[:10] if isinstance(value, str) else value.date().isoformat()
    if kind is Kind.DATETIME:
        text, moment = dialect.datetime_text, dialect.datetime
        return lambda value: text(value) if isinstance(value, str) else moment(value)
    if kind is Kind.BOOL:
        return bool
    return None


def json_object(parts: list[tuple[Spec, str]], key: Callable[[str], str] = str) -> str:
    """A row as a JSON object: wire names (through `key`) to their values' expressions."""
    return "{" + ", ".join(f"{key(spec.wire)!r}: {expression}" for spec, expression in parts) + "}"
