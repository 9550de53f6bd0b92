"""Rails-style dialects: typed XML by default, root-wrapped JSON on request."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from functools import cached_property
from typing import Any, ClassVar

from . import _json, _values, _xml, listing
from .base import Decoded, Dialect, Format, Reader, Reply, Spec, require_mapping
from .errors import BadRequest, GatewayError
from .model import NO_FACTS, Facts, Payment


class RailsDialect(Dialect):
    """A Rails app's resource: `<payment>` with typed elements, `<payments type="array">`.

    JSON mirrors Rails' `to_json` with `include_root_in_json`: `{"payment": {...}}`
    and a bare array of those, keys underscored.
    """

    formats = ("xml", "json")
    list_root: ClassVar[str]
    realm: ClassVar[str] = "Invoice payments"

    def normalise(self, key: str) -> str:
        return _xml.local(key)

    # --- decoding --------------------------------------------------------------

    def payment_fields(self, body: bytes, fmt: Format) -> Mapping[str, Any]:
        if fmt == "json":
            return self._unwrap(_json.loads(body))
        root = _xml.parse(body)
        if _xml.local(str(root.tag)) != _xml.local(self.root):
            raise BadRequest(f"Expected a <{self.root}> document, got <{root.tag}>")
        return _xml.record(root)

    def _unwrap(self, document: Any) -> Mapping[str, Any]:
        fields = require_mapping(document, self.root)
        key = _xml.local(self.root)
        if set(fields) == {key}:
            return require_mapping(fields[key], self.root)
        return fields

    def decode_list(self, body: bytes, fmt: Format, *, foreign_ids: bool = False) -> list[Decoded]:
        if fmt == "json":
            document = _json.loads(body)
            if not isinstance(document, list):
                raise BadRequest("Expected a JSON array of payments")
            items = [self._unwrap(item) for item in document]
        else:
            root = _xml.parse(body)
            if _xml.local(str(root.tag)) != _xml.local(self.list_root):
                raise BadRequest(f"Expected a <{self.list_root}> document, got <{root.tag}>")
            items = list(_xml.records(root, self.root))
        return [self.decode_fields(item, foreign_ids=foreign_ids) for item in items]

    def encode_request(
        self, fields: Mapping[str, Any], fmt: Format, warnings: list[str] | None = None
    ) -> bytes:
        rows = self.request_rows(fields, warnings)
        if fmt == "json":
            values = {_xml.local(spec.wire): self._json_value(spec, value) for spec, value in rows}
            return _json.dumps({_xml.local(self.root): values})
        xml_rows = [(spec.wire, _text(value), spec.xml_type) for spec, value in rows]
        return _xml.document(self.root, xml_rows)

    # --- encoding --------------------------------------------------------------

    def number(self, amount: Decimal) -> object:
        return _values.rails_decimal(amount)

    @cached_property
    def _record(self) -> _xml.Record:
        return _xml.Record(self.root, [(spec.wire, spec.xml_type) for spec in self.shown])

    @cached_property
    def _list_item(self) -> _xml.Record:
        return _xml.Record(self.root, [(spec.wire, spec.xml_type) for spec in self.shown], "  ")

    @cached_property
    def _json_keys(self) -> tuple[tuple[str, bool, Reader], ...]:
        """Per shown field: its JSON key, whether its text is a number, its reader."""
        return tuple(
            (_xml.local(spec.wire), spec.xml_type == "float", read)
            for spec, read in self.shown_readers
        )

    def _xml_values(self, payment: Payment, warnings: list[str] | None) -> list[str | None]:
        values: list[str | None] = []
        for _, read in self.shown_readers:
            value = read(payment, warnings)
            values.append(None if value is None else _text(value))
        return values

    def _json_fields(self, payment: Payment, warnings: list[str] | None) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        for key, number, read in self._json_keys:
            value = read(payment, warnings)
            fields[key] = Decimal(value) if number and isinstance(value, str) else value
        return fields

    def _json_value(self, spec: Spec, value: object) -> object:
        if isinstance(value, str) and spec.xml_type == "float":
            return Decimal(value)
        return value

    def encode_payment(
        self,
        payment: Payment,
        fmt: Format,
        warnings: list[str] | None = None,
        *,
        facts: Facts = NO_FACTS,
    ) -> bytes:
        if fmt == "json":
            return _json.dumps({_xml.local(self.root): self._json_fields(payment, warnings)})
        body = self._record.render(self._xml_values(payment, warnings))
        return _xml.DECLARATION + body.encode() + b"\n"

    def encode_payments(
        self,
        payments: Sequence[Payment],
        fmt: Format,
        warnings: list[str] | None = None,
        *,
        facts: Facts = NO_FACTS,
    ) -> bytes:
        if fmt == "json":
            key = _xml.local(self.root)
            return _json.dumps([{key: self._json_fields(p, warnings)} for p in payments])
        item = self._list_item
        return _xml.array_of(
            self.list_root, [item.render(self._xml_values(p, warnings)) for p in payments]
        )

    # --- lists from stored rows (see `listing`) -------------------------------------

    @cached_property
    def _xml_plan(self) -> listing.Plan:
        item = self._list_item
        lines = {
            spec: (start, end, nil)
            for spec, start, end, nil in zip(
                self.shown, item.opens, item.closes, item.nils, strict=True
            )
        }
        return listing.Plan(self, lambda spec: _xml_line(*lines[spec]))

    @cached_property
    def _json_plan(self) -> listing.Plan:
        return listing.Plan(self, _json_finish)

    @cached_property
    def _json_rows(self) -> Callable[[Sequence[listing.Row]], list[Any]]:
        root = _xml.local(self.root)
        return self._json_plan.encoder(
            lambda parts: f"{{{root!r}: {listing.json_object(parts, _xml.local)}}}"
        )

    @cached_property
    def _xml_rows(self) -> Callable[[Sequence[listing.Row]], list[bytes]]:
        item = self._list_item

        def lines(parts: list[tuple[Spec, str]]) -> str:  # one f-string a row, as UTF-8
            inner = "\\n".join(f"{{({expression})}}" for _, expression in parts)
            head, tail = listing.literal(item.head), listing.literal(item.tail)
            return f'f"{head}\\n{inner}\\n{tail}".encode()'

        return self._xml_plan.encoder(lines)

    @property
    def row_columns(self) -> tuple[str, ...]:
        return self._json_plan.columns

    def encode_rows(
        self, rows: Sequence[listing.Row], fmt: Format, warnings: list[str] | None = None
    ) -> bytes:
        if fmt == "json":
            items = self._json_rows(rows)
            self._json_plan.warnings(rows, warnings)
            return _json.dumps(items)
        rendered = self._xml_rows(rows)
        self._xml_plan.warnings(rows, warnings)
        return _xml.array_of_encoded(self.list_root, rendered)

    # --- errors ------------------------------------------------------------------

    def messages(self, error: GatewayError) -> list[str]:
        """Rails full messages: `Amount can't be blank`."""
        if not error.fields:
            return [error.message]
        return [
            f"{_humanise(self.wire_name(attr))} {message}" for attr, message in error.fields.items()
        ]

    def encode_error(self, error: GatewayError, fmt: Format) -> Reply:
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
        if fmt == "json":
            body = _json.dumps({"errors": messages})
        else:
            body = _xml.errors(messages)
        return Reply(status, body, headers)

    def error_details(self, body: bytes, fmt: Format) -> tuple[str, dict[str, str]]:
        """Rails full messages back into field problems: `Amount can't be blank`."""
        if fmt == "json":
            document = _json.loads(body)
            errors = document.get("errors") if isinstance(document, dict) else None
            messages = [str(e) for e in errors] if isinstance(errors, list) else []
        else:
            root = _xml.parse(body)
            messages = [child.text or "" for child in root if _xml.local(str(child.tag)) == "error"]
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


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _humanise(wire: str) -> str:
    words = _xml.local(wire).replace("_", " ").strip()
    return words[:1].upper() + words[1:]
