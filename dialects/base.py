"""The dialect contract: a dialect, and a codec for each format it speaks.

A `Dialect` holds what does not depend on the format: its field table (`fields.Spec`),
ids, methods, how a wire value is read and how a payment's field gets its native
value, and the capabilities only some dialects have (`search`). A `Codec` reads and
writes one format (XML or JSON) of one dialect: payments, lists, requests, errors. A
dialect declares its codec classes in `codec_types`; the gateway picks one codec per
request by media type (`dialect.codecs[fmt]`) and calls it without asking the format
again. A capability a dialect or codec may lack is an attribute that is None then.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import cached_property
from typing import Any, ClassVar, Literal, Protocol

from . import _json, _values, listing
from .errors import BadRequest, GatewayError, ValidationFailed
from .fields import Kind as Kind  # the field table's words, where dialects read them
from .fields import Spec as Spec
from .model import NO_FACTS, ZERO, Allocation, Facts, Method, Page, Payment, PaymentQuery

Format = Literal["xml", "json"]
WireId = int | str
# A field's native value from a payment (warnings collects what had to give).
Reader = Callable[["Payment", "list[str] | None"], object]

# C0 controls (tab and newlines allowed), DEL, lone surrogates and U+FFFE/U+FFFF:
# nothing that UTF-8 or XML 1.0 cannot carry.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
MAX_TEXT = 4000
# The Payment's attributes, read once (pydantic's `model_fields` is a property now).
_PAYMENT_ATTRS = frozenset(Payment.model_fields)


# Kinds as module names: an Enum member read off its class costs a descriptor call
# (Python 3.11), and decoding asks a field's kind several times.
_ID, _INVOICE_ID, _METHOD, _MONEY, _CONST = (
    Kind.ID, Kind.INVOICE_ID, Kind.METHOD, Kind.MONEY, Kind.CONST,
)  # fmt: skip
_NOT_BLANK = frozenset({Kind.AMOUNT, Kind.DATE, Kind.DATETIME})
_ID_TYPES = (str, int)


@dataclass(frozen=True)
class Decoded:
    """A decoded payment document: the fields it carried, and the request options."""

    payment: Payment
    provided: frozenset[str]
    options: Mapping[str, Any] = field(default_factory=dict)
    ids: Mapping[str, str] = field(default_factory=dict)
    # The item's fields as sent (wire names), where its dialect echoes a refused item.
    sent: Mapping[str, Any] = field(default_factory=dict)
    # The invoices a payment split across several settles, and how much of each: what a
    # dialect whose payments carry lines decoded (empty for a one-invoice payment).
    allocations: tuple[Allocation, ...] = ()

    def provided_values(self) -> dict[str, Any]:
        """The client-owned fields the document carried, ready to store."""
        values = {name: getattr(self.payment, name) for name in self.provided}
        if "method" in self.provided:
            values["method_label"] = self.payment.method_label
            values["origin"] = self.payment.origin
        return values


@dataclass(frozen=True)
class Reply:
    """An encoded error: status, extra headers and body."""

    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


class Dialect:
    """Base of every dialect; subclasses declare tables, their codecs and capabilities."""

    name: ClassVar[str]
    # The formats it speaks, the first its default, each with its codec's class.
    codec_types: ClassVar[Mapping[Format, Callable[[Dialect], Codec]]]
    root: ClassVar[str]
    fields: ClassVar[tuple[Spec, ...]]
    methods: ClassVar[Mapping[str, Method]] = {}
    method_words: ClassVar[Mapping[Method, str]] = {}
    method_fallback: ClassVar[str | None] = None
    required: ClassVar[frozenset[str]] = frozenset()
    statuses: ClassVar[Mapping[str, int]] = {}
    max_notes: ClassVar[int] = MAX_TEXT
    # The canonical ids the id form can write are 1 .. id_limit - 1 (None: any); a
    # decimal form reads at most 18 digits (`_values.parse_integer`).
    id_limit: ClassVar[int | None] = 10**18
    # Whether a deleted payment stays readable (marked deleted) rather than gone.
    shows_deleted: ClassVar[bool] = False
    # The id form as a format of the number (`format(number, id_format)`, text); None:
    # the number itself. Lists write ids of such forms inline (see `listing`).
    id_format: ClassVar[str | None] = None
    # Whether answers tell of more than the payments (see `Facts`): the handlers then
    # look the facts up and hand them to the encoders, which others are never given.
    shows_facts: ClassVar[bool] = False
    # Whether its answers tell, of a payment split across invoices, the whole payment it
    # is an allocation of (`Facts.groups`): looked up beside the invoices' facts.
    shows_groups: ClassVar[bool] = False
    # Op.SEARCH: how a list request's query (and headers) ask for payments; None: no search.
    search: Search | None = None

    @cached_property
    def codecs(self) -> Mapping[Format, Codec]:
        """A codec for each format the dialect speaks, made once."""
        return {fmt: make(self) for fmt, make in self.codec_types.items()}

    @cached_property
    def formats(self) -> tuple[Format, ...]:
        """The formats the dialect speaks, its default first."""
        return tuple(self.codec_types)

    # --- ids: one bijection per dialect over the canonical integer ids ---------

    def wire_id(self, number: int) -> WireId:
        return number if self.id_format is None else format(number, self.id_format)

    def carries(self, number: int) -> bool:
        """Whether this id form can write `number`, another form's id, unchanged.

        An integer form carries a decimal string's number, 24 hex digits or a UUID
        carry an integer, and every form carries its own ids.
        """
        return number > 0 and (self.id_limit is None or number < self.id_limit)

    def parse_id(self, text: object) -> int | None:
        """A canonical id from this dialect's id form, or None if it cannot be one."""
        try:
            number = _values.parse_integer(text)
        except _values.ValueProblem:
            return None
        return number if number > 0 else None

    # --- payments, whatever the format (its codec reads and writes the documents) ---

    def decode_fields(self, raw: Mapping[str, Any], *, foreign_ids: bool = False) -> Decoded:
        """Read a document's fields; `foreign_ids` keeps ids as the text a backend sent.

        Ids are always also returned as wire text in `Decoded.ids`; with
        `foreign_ids` they are not required to be in this gateway's own id form.
        """
        values: dict[str, Any] = {}
        options: dict[str, Any] = {}
        problems: dict[str, str] = {}
        ids: dict[str, str] = {}
        index = self.index
        for key, value in raw.items():
            spec = index.get(self.normalise(key))
            if spec is None:
                continue
            kind = spec.kind
            if kind is _CONST:
                continue
            if (kind is _ID or kind is _INVOICE_ID) and isinstance(value, _ID_TYPES):
                ids[spec.attr] = str(value)
                if foreign_ids:
                    continue
            try:
                decoded = self.read(spec, value)
            except _values.ValueProblem as exc:
                problems[spec.attr] = str(exc)
                continue
            if kind is _METHOD and decoded is not None:
                values["method_label"] = value
                values["origin"] = self.name
            target = values if spec.attr in _PAYMENT_ATTRS else options
            target[spec.attr] = decoded
        if problems:
            raise ValidationFailed(fields=problems)
        return Decoded(Payment(**values), self.settable.intersection(values), options, ids)

    def check_create(self, decoded: Decoded) -> None:
        """Refuse a create request that lacks what this dialect requires."""
        missing = {
            spec.attr: "can't be blank"
            for spec in self.fields  # the field table's order, not the frozenset's (hash seed)
            if spec.attr in self.required and spec.attr not in decoded.provided
        }
        if missing:
            raise ValidationFailed(fields=missing)

    def request_rows(
        self, fields: Mapping[str, Any], warnings: list[str] | None = None
    ) -> list[tuple[Spec, object]]:
        """The settable fields of a request body, native values, in table order.

        `fields` holds canonical attributes and request options; absent or None
        values are left out.
        """
        draft = Payment(**{k: v for k, v in fields.items() if k in _PAYMENT_ATTRS})
        rows: list[tuple[Spec, object]] = []
        for spec in self.fields:
            if spec.server_owned or spec.kind is Kind.CONST:
                continue
            if spec.attr in _PAYMENT_ATTRS:
                if fields.get(spec.attr) is None:
                    continue
                value = self.value(spec, draft, warnings)
            else:
                value = fields.get(spec.attr)
            if value is not None:
                rows.append((spec, value))
        return rows

    def canonical_fields(self, wire_fields: Mapping[str, str]) -> dict[str, str]:
        index = self.index
        found: dict[str, str] = {}
        for name, problem in wire_fields.items():
            spec = index.get(self.normalise(name))
            found[spec.attr if spec else name] = problem
        return found

    @property
    def row_columns(self) -> tuple[str, ...]:
        """The stored columns a list is encoded from (see `listing`), in the rows' order:
        the same in every format."""
        return self.codecs[self.formats[0]].row_columns

    # --- operations only some dialects serve (Op.SEARCH, CREATE_MANY, REMOVE) ---------

    def summarised(self, query: Mapping[str, str]) -> bool:
        """Whether one failed item of a batch fails the whole answer (else each says)."""
        return True

    def list_params(self, invoice: str) -> dict[str, str]:
        """The query that lists one invoice's payments where its path does not name it."""
        return {"invoice_id": invoice}

    # --- field reading and writing -------------------------------------------

    def normalise(self, key: str) -> str:
        return key

    @cached_property
    def shown(self) -> tuple[Spec, ...]:
        """The fields a payment document carries (request-only options left out)."""
        return tuple(
            spec
            for spec in self.fields
            if spec.value is not None or spec.attr in Payment.model_fields
        )

    @cached_property
    def settable(self) -> frozenset[str]:
        """The canonical attributes (and options) a client may set in this dialect."""
        return frozenset(spec.attr for spec in self.fields if not spec.server_owned)

    @cached_property
    def index(self) -> dict[str, Spec]:
        """The field table by normalised wire name."""
        return {self.normalise(spec.wire): spec for spec in self.fields}

    def read(self, spec: Spec, value: Any) -> Any:
        kind = spec.kind
        if value is None:
            if not spec.server_owned and kind in _NOT_BLANK:
                raise _values.ValueProblem("can't be blank")
            return ZERO if kind is _MONEY else None
        reader = _READERS.get(kind)
        return self.read_text(spec, value) if reader is None else reader(self, value)

    def read_text(self, spec: Spec, value: Any) -> str:
        if not isinstance(value, str):
            raise _values.ValueProblem("must be text")
        limit = self.max_notes if spec.attr == "notes" else MAX_TEXT
        if len(value) > limit:
            raise _values.ValueProblem(f"is too long (maximum is {limit} characters)")
        if _CONTROL.search(value):
            raise _values.ValueProblem("must not contain control characters")
        return value

    def method_word(self, payment: Payment, warnings: list[str] | None) -> str | None:
        word, warning = self.word_for(payment.method, payment.method_label, payment.origin)
        if warning is not None and warnings is not None:
            warnings.append(warning)
        return word

    def word_for(
        self, method: Method | None, label: str | None, origin: str | None
    ) -> tuple[str | None, str | None]:
        """The method's word in this dialect, and the warning it costs (None: none)."""
        if origin == self.name and label is not None:
            return label, None
        if method is None:
            return None, None
        word = self.method_words.get(method)
        if word is not None:
            return word, None
        shown = self.method_fallback if self.method_fallback is not None else "no method"
        return self.method_fallback, (
            f"method {method.value} has no {self.name} equivalent; sent as {shown}"
        )

    def value(self, spec: Spec, payment: Payment, warnings: list[str] | None) -> object:
        """The native value of one field of `payment` (before XML/JSON rendering)."""
        return self.readers[spec](payment, warnings)

    @cached_property
    def readers(self) -> dict[Spec, Reader]:
        """Per field, the function that reads its native value: chosen once, not per call."""
        return {spec: self._reader(spec) for spec in self.fields}

    @cached_property
    def shown_readers(self) -> tuple[tuple[Spec, Reader], ...]:
        """The readers of the fields a payment document carries, in table order."""
        return tuple((spec, self.readers[spec]) for spec in self.shown)

    def _reader(self, spec: Spec) -> Reader:
        computed = spec.value
        if computed is not None:
            return lambda payment, _: computed(payment)
        if spec.kind is Kind.METHOD:
            return self.method_word
        attr = spec.attr
        converters: dict[Kind, Callable[[Any], object]] = {
            Kind.ID: self.wire_id,
            Kind.INVOICE_ID: self.wire_id,
            Kind.AMOUNT: self.number,
            Kind.MONEY: self.number,
            Kind.DATE: _date_text,
            Kind.DATETIME: self.datetime,
        }
        convert = converters.get(spec.kind)
        if convert is None:
            return lambda payment, _: getattr(payment, attr, None)
        to_wire = convert

        def read(payment: Payment, _: list[str] | None) -> object:
            raw = getattr(payment, attr, None)
            return None if raw is None else to_wire(raw)

        return read

    def number(self, amount: Decimal) -> object:
        return _values.js_number(amount)

    def datetime(self, moment: datetime) -> str:
        return _values.iso_z(moment)

    def datetime_text(self, stored: str) -> str:
        """`datetime` of a moment a store kept as ISO text (a dialect may skip parsing it)."""
        return self.datetime(datetime.fromisoformat(stored))

    # --- errors ---------------------------------------------------------------

    def status_of(self, error: GatewayError) -> int:
        return self.statuses.get(error.kind, error.status)

    def wire_name(self, attr: str) -> str:
        for spec in self.fields:
            if spec.attr == attr:
                return spec.wire
        return attr

    def wire_fields(self, error: GatewayError) -> dict[str, str]:
        return {self.wire_name(attr): message for attr, message in error.fields.items()}


class Search(Protocol):
    """Op.SEARCH: the payments a list request's query string and headers ask for
    (`If-Modified-Since`, say)."""

    def read_search(self, query: Mapping[str, str], headers: Mapping[str, str]) -> PaymentQuery:
        """The search a request asks for."""


class Batches(Protocol):
    """Op.CREATE_MANY answered item by item (`Dialect.summarised` False)."""

    def encode_batch(
        self,
        results: Sequence[Payment | GatewayError],
        warnings: list[str] | None = None,
        *,
        facts: Facts = NO_FACTS,
    ) -> bytes:
        """Each item's answer: the payment made, or why it was not (a refusal's `sent`
        holds the item as it was sent)."""


class Removal(Protocol):
    """Op.REMOVE: a payment deleted by a body that marks it so."""

    def read_removal(self, body: bytes) -> None:
        """Check that a body asks to delete the payment; refuse any other change."""

    def encode_removed(self, payment: Payment, *, facts: Facts = NO_FACTS) -> bytes:
        """The answer to a removal: the payment as it was, marked deleted."""

    def removal_request(self) -> bytes:
        """The body of a request that removes a payment (proxy mode)."""


class Codec(ABC):
    """One format of one dialect: its documents read into canonical payments, and
    payments, lists, requests and errors written in it.

    The format's shared mechanics are `_json` and `_xml`; the dialect (`self.dialect`)
    gives the field table and every value's native form.
    """

    fmt: ClassVar[Format]
    # Op.CREATE_MANY answered item by item, and Op.REMOVE: None where the dialect has none.
    batches: Batches | None = None
    removal: Removal | None = None

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect

    # --- reading ----------------------------------------------------------------------

    @abstractmethod
    def payment_fields(self, body: bytes) -> Mapping[str, Any]:
        """The fields of one payment document, by wire name."""

    @abstractmethod
    def list_items(self, body: bytes) -> list[Mapping[str, Any]]:
        """The fields of each payment of a list document."""

    @abstractmethod
    def error_details(self, body: bytes) -> tuple[str, dict[str, str]]:
        """The message and field problems (by wire name) of this dialect's error body."""

    def decode_payment(self, body: bytes, *, foreign_ids: bool = False) -> Decoded:
        return self.dialect.decode_fields(self.payment_fields(body), foreign_ids=foreign_ids)

    def decode_list(self, body: bytes, *, foreign_ids: bool = False) -> list[Decoded]:
        decode = self.dialect.decode_fields
        return [decode(item, foreign_ids=foreign_ids) for item in self.list_items(body)]

    def decode_payments(self, body: bytes) -> list[Payment]:
        return [decoded.payment for decoded in self.decode_list(body)]

    def decode_items(self, body: bytes) -> list[Decoded | GatewayError]:
        """A batch's items, each read on its own: one that cannot be read stands in its
        place as its refusal, so the others may still be answered one by one."""
        return list(self.decode_list(body))

    # --- writing ----------------------------------------------------------------------

    @abstractmethod
    def encode_payment(
        self, payment: Payment, warnings: list[str] | None = None, *, facts: Facts = NO_FACTS
    ) -> bytes:
        """One payment's document."""

    @abstractmethod
    def encode_payments(
        self,
        payments: Sequence[Payment],
        warnings: list[str] | None = None,
        *,
        facts: Facts = NO_FACTS,
    ) -> bytes:
        """A list's document."""

    @abstractmethod
    def encode_request(self, fields: Mapping[str, Any], warnings: list[str] | None = None) -> bytes:
        """A request body this gateway sends as a client (proxy mode): `fields` holds
        canonical attributes and request options."""

    @abstractmethod
    def encode_error(self, error: GatewayError) -> Reply:
        """The dialect's answer to a refused request."""

    @property
    def row_columns(self) -> tuple[str, ...]:
        """The stored columns `encode_rows` reads (see `listing`), in the rows' order."""
        return listing.PAYMENT_FIELDS

    def encode_rows(self, rows: Sequence[listing.Row], warnings: list[str] | None = None) -> bytes:
        """A list from stored rows of `row_columns`: the same bytes as `encode_payments`."""
        columns = self.row_columns
        return self.encode_payments([listing.payment_of(columns, row) for row in rows], warnings)

    def encode_page(
        self,
        payments: Sequence[Payment],
        page: Page | None = None,
        *,
        warnings: list[str] | None = None,
        facts: Facts = NO_FACTS,
    ) -> bytes:
        """A search's answer; `page` says where a paged one stands."""
        return self.encode_payments(payments, warnings, facts=facts)


class RowsCodec(Codec):
    """A codec that writes lists straight from stored rows (see `listing`): one plan of
    the dialect's shown fields, compiled once into one encoder of rows."""

    @abstractmethod
    def finish(self, spec: Spec) -> listing.Finish | None:
        """What turns a field's native value into its final form here (None: as it is)."""

    @abstractmethod
    def row_shape(self, parts: list[tuple[Spec, str]]) -> str:
        """The source of one row's final form from its fields' (spec, expression)."""

    @abstractmethod
    def listed(self, items: list[Any]) -> bytes:
        """A list's document around rows already in their final forms."""

    @cached_property
    def plan(self) -> listing.Plan:
        return listing.Plan(self.dialect, self.finish, ids_by_format=ids_by_format(self.dialect))

    @cached_property
    def _rows(self) -> Callable[[Sequence[listing.Row]], list[Any]]:
        return self.plan.encoder(self.row_shape)

    @property
    def row_columns(self) -> tuple[str, ...]:
        return self.plan.columns

    def encode_rows(self, rows: Sequence[listing.Row], warnings: list[str] | None = None) -> bytes:
        items = self._rows(rows)
        self.plan.warnings(rows, warnings)
        return self.listed(items)


def ids_by_format(dialect: Dialect) -> bool:
    """Whether the dialect's ids are `format(number, id_format)`: a list may write them
    inline (see `listing`)."""
    return type(dialect).wire_id is Dialect.wire_id


def error_object(error: GatewayError, status: int, fields: Mapping[str, str]) -> Reply:
    """`{"error": {"code", "message", "fields"}}`: the canonical error object."""
    body: dict[str, Any] = {"code": error.kind, "message": error.message}
    if fields:
        body["fields"] = dict(fields)
    return Reply(status, _json.dumps({"error": body}), error.headers())


def _date_text(moment: datetime) -> str:
    return moment.date().isoformat()


def require_mapping(document: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(document, dict):
        raise BadRequest(f"Expected a JSON object for {what}")
    return document


# --- reading one wire value by its kind (text, and constants, by `Dialect.read_text`) ---


def _read_id(dialect: Dialect, value: Any) -> int:
    number = dialect.parse_id(value)
    if number is None:
        raise _values.ValueProblem("is not a valid id")
    return number


def _read_amount(dialect: Dialect, value: Any) -> Decimal:
    amount = _values.parse_amount(value)
    if amount <= 0:
        raise _values.ValueProblem("must be greater than 0")
    return amount


def _read_money(dialect: Dialect, value: Any) -> Decimal:
    amount = _values.parse_amount(value)
    if amount < 0:
        raise _values.ValueProblem("must not be negative")
    return amount


def _read_date(dialect: Dialect, value: Any) -> datetime:
    return _values.parse_datetime(_values.parse_date(value).isoformat())


def _read_datetime(dialect: Dialect, value: Any) -> datetime:
    return _values.parse_datetime(value)


def _read_method(dialect: Dialect, value: Any) -> Method:
    methods = dialect.methods
    if not isinstance(value, str) or value not in methods:  # a list is unhashable
        raise _values.ValueProblem(f"must be one of {', '.join(methods)}")
    return methods[value]


def _read_bool(dialect: Dialect, value: Any) -> bool:
    return _values.parse_bool(value)


_READERS: dict[Kind, Callable[[Dialect, Any], Any]] = {
    Kind.ID: _read_id,
    Kind.INVOICE_ID: _read_id,
    Kind.AMOUNT: _read_amount,
    Kind.MONEY: _read_money,
    Kind.DATE: _read_date,
    Kind.DATETIME: _read_datetime,
    Kind.METHOD: _read_method,
    Kind.BOOL: _read_bool,
}
