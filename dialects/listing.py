"""Lists encoded straight from stored rows: per dialect, plans compiled from its field table.

A row is one payment as a store keeps it: a tuple of values in the order of the
columns (canonical attribute names) the dialect asked for. A value is canonical, or
in the form a store keeps it: an amount as its decimal text, a moment as its ISO text
(`datetime.isoformat()`), the method as its canonical word, a flag as 0 or 1. So a
list is encoded without building a Payment, a Decimal or a datetime per row: each
field reads its column(s) and renders through the same dialect methods a single
payment's answer uses, remembering the renderings of values (amounts, moments, the
invoice id, method words, computed fields) in dictionaries the compiled rows read
without a Python call; ids and free text are written inline.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from operator import itemgetter
from typing import Any, Protocol

from .fields import Kind, Spec
from .model import Method, Payment, stored_payment

Row = tuple[Any, ...]


class Dialect(Protocol):
    """What a plan reads of a dialect (`base.Dialect`): its shown fields and how it gives
    a value its native form."""

    @property
    def name(self) -> str: ...
    @property
    def shown(self) -> tuple[Spec, ...]: ...
    @property
    def id_format(self) -> str | None: ...
    def wire_id(self, number: int) -> int | str: ...
    def number(self, amount: Decimal) -> object: ...
    def datetime(self, moment: datetime) -> str: ...
    def datetime_text(self, stored: str) -> str: ...
    def word_for(
        self, method: Method | None, label: str | None, origin: str | None
    ) -> tuple[str | None, str | None]: ...


Convert = Callable[[Any], Any]
# A value's final form (a JSON value, an XML line) from the native value of its field.
Finish = Callable[[object], object]

PAYMENT_FIELDS = tuple(Payment.model_fields)
_MONEY = frozenset({"amount", "tax_withheld", "fee"})
_MOMENTS = frozenset({"paid_at", "created_at", "updated_at", "deleted_at"})
_MEMO_SIZE = 4096  # distinct values remembered per field before starting afresh
_SPEC = re.compile(r"[0-9A-Za-z]*")  # the id formats written inline into a compiled row
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


class Memo(dict[Hashable, object]):
    """`convert`'s results by value: a compiled row reads `memo[value]`, so a value seen
    before costs one dictionary lookup and no Python call. Bounded: past `_MEMO_SIZE`
    distinct values it starts afresh."""

    __slots__ = ("convert",)

    def __init__(self, convert: Convert) -> None:
        super().__init__()
        self.convert = convert

    def __missing__(self, value: Hashable) -> object:
        if len(self) >= _MEMO_SIZE:
            self.clear()
        result = self[value] = self.convert(value)
        return result


def memo(convert: Convert, key: Callable[[Any], Hashable] | None = None) -> Convert:
    """`convert`, remembering its results by value (or by `key(value)`)."""
    if key is None:
        return Memo(convert).__getitem__
    seen: dict[Hashable, object] = {}
    by = key

    def by_key(value: Any) -> object:
        found_key = by(value)
        found = seen.get(found_key, _UNSEEN)
        if found is not _UNSEEN:
            return found
        if len(seen) >= _MEMO_SIZE:
            seen.clear()
        result = seen[found_key] = convert(value)
        return result

    return by_key


class TextMemo(Memo):
    """A `Memo` of values kept as text (how SQLite keeps amounts and moments) and None.
    Any other value (a Decimal, a datetime) goes to `others`, never into this memo:
    equal Decimals and instants can render differently (`100.0`, `100.00`)."""

    __slots__ = ("others",)

    def __init__(self, convert: Convert, others: Convert) -> None:
        super().__init__(convert)
        self.others = others

    def __missing__(self, value: Hashable) -> object:
        if value is None or value.__class__ is str:
            return super().__missing__(value)
        return self.others(value)


def _amounts(convert: Convert) -> TextMemo:
    """Decimals by their exact text: `100.0` and `100.00` are equal Decimals."""
    return TextMemo(convert, memo(convert, str))


def _dates(convert: Convert) -> TextMemo:
    """Datetimes by instant and zone: equal instants in other zones are other dates."""
    return TextMemo(convert, memo(convert, lambda moment: (moment, moment.utcoffset())))


class Enclose:
    """A final form that puts a value's text between `start` and `end` (None: `nil`),
    escaped with `escape` where `special` finds a character in it; a value that is not
    text is shown by `show` first. Compiled rows write text values inline."""

    def __init__(
        self,
        start: str,
        end: str,
        nil: str,
        special: re.Pattern[str],
        escape: Callable[[str], str],
        show: Callable[[object], str] = str,
    ) -> None:
        self.start, self.end, self.nil = start, end, nil
        self.special, self.escape, self.show = special, escape, show

    def __call__(self, value: object) -> object:
        if value is None:
            return self.nil
        shown = value if isinstance(value, str) else self.show(value)
        special = self.special.search(shown) is not None
        return self.start + (self.escape(shown) if special else shown) + self.end


# Writes the source of a field's final form from the source of what it reads (`key`: its
# column's value, or a tuple of its columns' values), a local name of its own (`var`)
# and `name`, which names an object for the source to use.
Source = Callable[[str, str, Callable[[object], str]], str]


class Field:
    """One shown field of a row plan: the columns it reads, and how its final form is
    written in a compiled row (`source`).

    A field whose `source` writes text as it is (no escaping) gives in `checks` a pattern
    of the characters that text must not hold, and in `safe` how to write it then: a row whose
    such text holds none (nearly all) is written by the `source`s, checked once.
    """

    def __init__(
        self,
        spec: Spec,
        columns: tuple[str, ...],
        source: Source,
        *,
        safe: Source | None = None,
        checks: re.Pattern[str] | None = None,
    ) -> None:
        self.spec = spec
        self.columns = columns
        self.source = source
        self.safe = source if safe is None else safe
        self.checks = checks


# Builds a row's final form (a source expression) from its fields' (spec, expression).
Shape = Callable[[list[tuple[Spec, str]]], str]


class Plan:
    """A dialect's shown fields, the columns they read, and their warnings.

    `finish` gives per field what turns its native value into its final form (None: the
    native value is final); fields whose values repeat across rows remember their
    final forms. `encoder` compiles the fields into one list comprehension.
    """

    def __init__(
        self,
        dialect: Dialect,
        finish: Callable[[Spec], Finish | None],
        *,
        ids_by_format: bool,
    ) -> None:
        self.dialect = dialect
        self.fields = [_field(dialect, spec, finish(spec), ids_by_format) for spec in dialect.shown]
        self.columns = tuple(dict.fromkeys(name for f in self.fields for name in f.columns))
        self._where = {name: index for index, name in enumerate(self.columns)}
        self._method = _method_getter(dialect, self._where)

    def encoder(self, shape: Shape) -> Callable[[Sequence[Row]], list[Any]]:
        """A function from rows to their final forms, compiled once into one list
        comprehension: each field's column read inline, values seen before looked up
        without a Python call, text written between its markup inline (checked for
        escapes once a row), constants made once."""
        names: dict[str, object] = {}

        def name(found: object) -> str:
            names[f"n{len(names)}"] = found
            return f"n{len(names) - 1}"

        keys = [self._key(found) for found in self.fields]
        row = shape([(f.spec, f.source(k, f"v{n}", name)) for n, (f, k) in self._keyed(keys)])
        checked = [(key, f.checks) for key, f in zip(keys, self.fields, strict=True) if f.checks]
        if checked:
            safe = shape([(f.spec, f.safe(k, f"v{n}", name)) for n, (f, k) in self._keyed(keys)])
            row = f"({safe} if {_escapes(checked, name)} else {row})"
        source = f"def encode(rows):\n    return [{row} for row in rows]\n"
        exec(compile(source, f"<rows of {self.dialect.name}>", "exec"), names)  # noqa: S102
        encode: Callable[[Sequence[Row]], list[Any]] = names["encode"]  # type: ignore[assignment]
        return encode

    def _keyed(self, keys: list[str]) -> Iterator[tuple[int, tuple[Field, str]]]:
        return enumerate(zip(self.fields, keys, strict=True))

    def _key(self, found: Field) -> str:
        """The source of what a field reads: its column's value or a tuple of them."""
        reads = [f"row[{self._where[column]}]" for column in found.columns]
        return reads[0] if len(reads) == 1 else f"({', '.join(reads)},)"

    def warnings(self, rows: Sequence[Row], warnings: list[str] | None) -> None:
        """The translation warnings the rows' methods cost, row by row (as one by one)."""
        if warnings is None or self._method is None:
            return
        read, warn = self._method
        words: Iterator[Any] = map(warn.__getitem__, map(read, rows))
        warnings.extend(filter(None, words))


def _escapes(checked: list[tuple[str, re.Pattern[str]]], name: Callable[[object], str]) -> str:
    """The source of the test whether a row's checked text holds a character to escape:
    the texts joined once, then one look for any (a markup has one pattern of them).

    ASCII text (nearly every row; `isascii` costs nothing) is looked at as bytes, the
    pattern's ASCII characters deleted: a length that changed found one, in half the
    time the pattern's search takes. Other text is searched with the pattern."""
    (special,) = {checks for _, checks in checked}
    ascii_specials = bytes(code for code in range(128) if special.match(chr(code)))
    text, deleted = "text", f"text.encode().translate(None, {name(ascii_specials)})"
    return (
        f"(len({deleted}) != len({text})"
        f" if ({text} := {_joined(key for key, _ in checked)}).isascii()"
        f" else {name(special.search)}({text}))"
    )


def literal(text: str) -> str:
    """`text` as the literal part of a double-quoted f-string's source."""
    for plain, escaped in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("{", "{{"), ("}", "}}")):
        text = text.replace(plain, escaped)
    return text


def _joined(keys: Iterable[str]) -> str:
    """The source of one text of the values `keys` read (None as `None`)."""
    return 'f"' + "".join(f"{{{key}}}" for key in keys) + '"'


def _method_getter(
    dialect: Dialect, where: dict[str, int]
) -> tuple[Callable[[Row], Any], Memo] | None:
    if not any(spec.kind is Kind.METHOD and spec.value is None for spec in dialect.shown):
        return None
    read = itemgetter(where["method"], where["method_label"], where["origin"])
    return read, Memo(lambda found: _method_word(dialect, found)[1])


def _method_word(dialect: Dialect, found: tuple[Any, Any, Any]) -> tuple[str | None, str | None]:
    method, label, origin = found
    return dialect.word_for(canonical("method", method), label, origin)


def _field(dialect: Dialect, spec: Spec, finish: Finish | None, ids_by_format: bool) -> Field:
    if spec.value is not None:
        return _computed(spec, finish)
    if spec.kind is Kind.METHOD:
        word = Memo(lambda found: _finished(finish, _method_word(dialect, found)[0]))
        return Field(spec, (spec.attr, "method_label", "origin"), _remembered(word))
    columns = (spec.attr,)
    inline = _inline_id(dialect, finish) if ids_by_format and spec.kind is Kind.ID else None
    if inline is not None:
        return Field(spec, columns, inline)
    native = _native(dialect, spec)
    if native is None and finish is None:
        return Field(spec, columns, lambda key, var, name: key)
    if native is None and isinstance(finish, Enclose):
        return _enclosed_text(spec, finish)
    convert = _converter(native, finish)
    if spec.kind in (Kind.AMOUNT, Kind.MONEY):
        return Field(spec, columns, _remembered(_amounts(convert)))
    if spec.kind in (Kind.DATE, Kind.DATETIME):  # payment dates repeat; creation times not
        return Field(spec, columns, _remembered(_dates(convert)))
    if spec.kind in (Kind.INVOICE_ID, Kind.BOOL):  # one invoice a list; two flag values
        return Field(spec, columns, _remembered(Memo(convert)))
    return Field(spec, columns, lambda key, var, name: f"{name(convert)}({key})")


def _converter(native: Convert | None, finish: Finish | None) -> Convert:
    """A stored value (or None) to its final form: `native`, then `finish`."""
    if native is None:
        assert finish is not None
        return finish
    if finish is None:
        return lambda value: None if value is None else native(value)
    return lambda value: finish(None if value is None else native(value))


def _remembered(seen: Memo) -> Source:
    return lambda key, var, name: f"{name(seen)}[{key}]"


def _enclosed_text(spec: Spec, finish: Enclose) -> Field:
    """Text written between its markup inline (the row checked for escapes first);
    None as `nil`; a row with text to escape through `finish`."""
    return Field(
        spec,
        (spec.attr,),
        lambda key, var, name: (
            f"({name(finish.nil)} if ({var} := {key}) is None"
            f" else {name(finish.start)} + {var} + {name(finish.end)}"
            f" if {var}.__class__ is str else {name(finish)}({var}))"
        ),
        safe=lambda key, var, name: f"{name(finish)}({key})",
        checks=finish.special,
    )


def _inline_id(dialect: Dialect, finish: Finish | None) -> Source | None:
    """A payment id written inline (an f-string) where the dialect's id form is a format
    of the number (`Dialect.id_format`): digits and hex letters need no escaping."""
    spec = dialect.id_format
    if not _SPEC.fullmatch(spec or ""):
        return None
    if finish is None and spec is None:
        return lambda key, var, name: key
    shown = "" if spec in (None, "d") else f":{spec}"  # an int's `f"{n}"` is `format(n, "d")`
    if finish is None:
        return lambda key, var, name: f"(None if ({var} := {key}) is None else f'{{{var}{shown}}}')"
    if not isinstance(finish, Enclose):
        return None
    return lambda key, var, name: (
        f"({name(finish.nil)} if ({var} := {key}) is None"
        f" else f'{{{name(finish.start)}}}{{{var}{shown}}}{{{name(finish.end)}}}')"
    )


def _finished(finish: Finish | None, value: object) -> object:
    return value if finish is None else finish(value)


def _computed(spec: Spec, finish: Finish | None) -> Field:
    compute = spec.value
    assert compute is not None
    if spec.reads == ():
        value = _finished(finish, compute(Payment()))
        return Field(spec, (), lambda key, var, name: name(value))
    reads = spec.reads if spec.reads is not None else PAYMENT_FIELDS

    def convert(found: Any) -> object:
        values = found if len(reads) != 1 else (found,)
        return _finished(finish, compute(payment_of(reads, values)))

    return Field(spec, reads, _remembered(Memo(convert)))


def _native(dialect: Dialect, spec: Spec) -> Convert | None:
    """A stored value (not None) to the dialect's native value, as its reader gives it
    (None: the value itself)."""
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
