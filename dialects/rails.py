"""Rails-style dialects: typed XML by default, root-wrapped JSON on request."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from functools import cached_property
from typing import Any, ClassVar

from . import _json, _values, _xml, listing
from .base import Dialect, Reader, Reply, RowsCodec, Spec, require_mapping
from .errors import BadRequest, GatewayError
from .model import NO_FACTS, Facts, Payment


class RailsXml(RowsCodec):
    """Typed elements: `<payment><amount type="decimal">..`, lists `type="array"`."""

    fmt = "xml"
    dialect: RailsDialect

    # --- reading ---------------------------------------------------------------------

    def payment_fields(self, body: bytes) -> Mapping[str, Any]:
        root, expected = _xml.parse(body), self.dialect.root
        if _xml.local(str(root.tag)) != _xml.local(expected):
            raise BadRequest(f"Expected a <{expected}> document, got <{root.tag}>")
        return _xml.record(root)

    def list_items(self, body: bytes) -> list[Mapping[str, Any]]:
        root, expected = _xml.parse(body), self.dialect.list_root
        if _xml.local(str(root.tag)) != _xml.local(expected):
            raise BadRequest(f"Expected a <{expected}> document, got <{root.tag}>")
        return list(_xml.records(root, self.dialect.root))

    def error_details(self, body: bytes) -> tuple[str, dict[str, str]]:
        root = _xml.parse(body)
        messages = [child.text or "" for child in root if _xml.local(str(child.tag)) == "error"]
        return self.dialect.problems(messages)

    # --- writing ---------------------------------------------------------------------

    @cached_property
    def _record(self) -> _xml.Record:
        dialect = self.dialect
        return _xml.Record(dialect.root, [(spec.wire, spec.xml_type) for spec in dialect.shown])

    @cached_property
    def _list_item(self) -> _xml.Record:
        dialect = self.dialect
        shown = [(spec.wire, spec.xml_type) for spec in dialect.shown]
        return _xml.Record(dialect.root, shown, "  ")

    def _values(self, payment: Payment, warnings: list[str] | None) -> list[str | None]:
        values: list[str | None] = []
        for _, read in self.dialect.shown_readers:
            value = read(payment, warnings)
            values.append(None if value is None else _text(value))
        return values

    def encode_payment(
        self, payment: Payment, warnings: list[str] | None = None, *, facts: Facts = NO_FACTS
    ) -> bytes:
        body = self._record.render(self._values(payment, warnings))
        return _xml.DECLARATION + body.encode() + b"\n"

    def encode_payments(
        self,
        payments: Sequence[Payment],
        warnings: list[str] | None = None,
        *,
        facts: Facts = NO_FACTS,
    ) -> bytes:
        item = self._list_item
        return _xml.array_of(
            self.dialect.list_root, [item.render(self._values(p, warnings)) for p in payments]
        )

    def encode_request(self, fields: Mapping[str, Any], warnings: list[str] | None = None) -> bytes:
        rows = self.dialect.request_rows(fields, warnings)
        xml_rows = [(spec.wire, _text(value), spec.xml_type) for spec, value in rows]
        return _xml.document(self.dialect.root, xml_rows)

    def encode_error(self, error: GatewayError) -> Reply:
        return self.dialect.error_reply(error, _xml.errors)

    # --- lists from stored rows (see `listing`) ----------------------------------------

    @cached_property
    def _lines(self) -> dict[Spec, listing.Enclose]:
        """Per shown field, its line of a listed item: start, end and nil rendered once."""
        item = self._list_item
        return {
            spec: _xml_line(start, end, nil)
            for spec, start, end, nil in zip(
                self.dialect.shown, item.opens, item.closes, item.nils, strict=True
            )
        }

    def finish(self, spec: Spec) -> listing.Finish | None:
        return self._lines[spec]

    def row_shape(self, parts: list[tuple[Spec, str]]) -> str:
        """One f-string a row, as UTF-8."""
        item = self._list_item
        inner = "\\n".join(f"{{({expression})}}" for _, expression in parts)
        head, tail = listing.literal(item.head), listing.literal(item.tail)
        return f'f"{head}\\n{inner}\\n{tail}".encode()'

    def listed(self, items: list[Any]) -> bytes:
        return _xml.array_of_encoded(self.dialect.list_root, items)


class RailsJson(RowsCodec):
    """`{"payment": {...}}` with underscored keys; a list is a bare array of those."""

    fmt = "json"
    dialect: RailsDialect

    # --- reading ---------------------------------------------------------------------

    def _unwrap(self, document: Any) -> Mapping[str, Any]:
        root = self.dialect.root
        fields = require_mapping(document, root)
        if set(fields) == {self.dialect.key}:
            return require_mapping(fields[self.dialect.key], root)
        return fields

    def payment_fields(self, body: bytes) -> Mapping[str, Any]:
        return self._unwrap(_json.loads(body))

    def list_items(self, body: bytes) -> list[Mapping[str, Any]]:
        document = _json.loads(body)
        if not isinstance(document, list):
            raise BadRequest("Expected a JSON array of payments")
        return [self._unwrap(item) for item in document]

    def error_details(self, body: bytes) -> tuple[str, dict[str, str]]:
        document = _json.loads(body)
        errors = document.get("errors") if isinstance(document, dict) else None
        messages = [str(e) for e in errors] if isinstance(errors, list) else []
        return self.dialect.problems(messages)

    # --- writing ---------------------------------------------------------------------

    @cached_property
    def _keys(self) -> tuple[tuple[str, bool, Reader], ...]:
        """Per shown field: its JSON key, whether its text is a number, its reader."""
        return tuple(
            (_xml.local(spec.wire), spec.xml_type == "float", read)
            for spec, read in self.dialect.shown_readers
        )

    def _fields(self, payment: Payment, warnings: list[str] | None) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        for key, number, read in self._keys:
            value = read(payment, warnings)
            fields[key] = Decimal(value) if number and isinstance(value, str) else value
        return fields

    def encode_payment(
        self, payment: Payment, warnings: list[str] | None = None, *, facts: Facts = NO_FACTS
    ) -> bytes:
        return _json.dumps({self.dialect.key: self._fields(payment, warnings)})

    def encode_payments(
        self,
        payments: Sequence[Payment],
        warnings: list[str] | None = None,
        *,
        facts: Facts = NO_FACTS,
    ) -> bytes:
        key = self.dialect.key
        return _json.dumps([{key: self._fields(p, warnings)} for p in payments])

    def encode_request(self, fields: Mapping[str, Any], warnings: list[str] | None = None) -> bytes:
        rows = self.dialect.request_rows(fields, warnings)
        values = {_xml.local(spec.wire): _json_value(spec, value) for spec, value in rows}
        return _json.dumps({self.dialect.key: values})

    def encode_error(self, error: GatewayError) -> Reply:
        return self.dialect.error_reply(error, lambda messages: _json.dumps({"errors": messages}))

    # --- lists from stored rows (see `listing`) ----------------------------------------

    def finish(self, spec: Spec) -> listing.Finish | None:
        return _json_finish(spec)

    def row_shape(self, parts: list[tuple[Spec, str]]) -> str:
        return f"{{{self.dialect.key!r}: {listing.json_object(parts, _xml.local)}}}"

    def listed(self, items: list[Any]) -> bytes:
        return _json.dumps(items)


class RailsDialect(Dialect):
    """A Rails app's resource: `<payment>` with typed elements, `<payments type="array">`.

    JSON mirrors Rails' `to_json` with `include_root_in_json`: `{"payment": {...}}`
    and a bare array of those, keys underscored.
    """

    codec_types = {"xml": RailsXml, "json": RailsJson}
    list_root: ClassVar[str]
    realm: ClassVar[str] = "Invoice payments"

    def normalise(self, key: str) -> str:
        return _xml.local(key)

    def number(self, amount: Decimal) -> object:
        return _values.rails_decimal(amount)

    @cached_property
    def key(self) -> str:
        """The root element's name as a JSON key (underscored)."""
        return _xml.local(self.root)

    # --- errors: Rails full messages, in either format -----------------------------

    def messages(self, error: GatewayError) -> list[str]:
        """Rails full messages: `Amount can't be blank`."""
        if not error.fields:
            return [error.message]
        return [
            f"{_humanise(self.wire_name(attr))} {message}" for attr, message in error.fields.items()
        ]

    def error_reply(self, error: GatewayError, render: Callable[[list[str]], bytes]) -> Reply:
        """The answer to `error`: its status and headers, its messages rendered by `render`."""
        status = self.status_of(error)
        headers = error.headers()
        if status == 401:
            headers["WWW-Authenticate"] = f'Basic realm="{self.realm}"'
        messages = self.messages(error)
        if status == 400:
            # Header values are printable ASCII: anything else quoted from the body (non-ASCII,
            # a control character a backend's message held) is escaped, not sent raw.
            hint = "; ".join(messages).replace("\n", " ")
            headers["Hint"] = _UNPRINTABLE.sub(_escaped, hint)[:500]
        return Reply(status, render(messages), headers)

    def problems(self, messages: list[str]) -> tuple[str, dict[str, str]]:
        """Rails full messages back into field problems: `Amount can't be blank`."""
        fields: dict[str, str] = {}
        for message in messages:
            for spec in sorted(self.fields, key=lambda s: -len(s.wire)):
                prefix = _humanise(spec.wire) + " "
                if message.startswith(prefix):
                    fields[spec.wire] = message[len(prefix) :]
                    break
        return "; ".join(messages) or "Request refused", fields


_UNPRINTABLE = re.compile(r"[^ -~]")


def _escaped(found: re.Match[str]) -> str:
    return found.group().encode("unicode_escape").decode("ascii")


def _xml_line(start: str, end: str, nil: str) -> listing.Enclose:
    return listing.Enclose(start, end, nil, _xml.SPECIAL, _xml.text, _text)


def _json_finish(spec: Spec) -> listing.Finish | None:
    """A `float` field's text becomes a JSON number (once per value, not per row)."""
    if spec.xml_type != "float":
        return None
    return lambda value: _json.jsonable(Decimal(value) if isinstance(value, str) else value)


def _json_value(spec: Spec, value: object) -> object:
    if isinstance(value, str) and spec.xml_type == "float":
        return Decimal(value)
    return value


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _humanise(wire: str) -> str:
    words = _xml.local(wire).replace("_", " ").strip()
    return words[:1].upper() + words[1:]
