"""JSON-only dialects: a flat payment object, a list shape of the vendor's choosing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from . import _json, listing
from .base import Dialect, Kind, RowsCodec, Spec, require_mapping
from .errors import BadRequest
from .model import NO_FACTS, Facts, Payment


class JsonDialect(Dialect):
    """A JSON API whose payment is one flat object with the dialect's own keys.

    `list_key` None answers a list as a bare array, else as `{list_key: [...]}`. Its
    codec is a `JsonCodec` subclass that writes and reads the vendor's error body.
    """

    list_key: ClassVar[str | None] = None

    def payment_object(self, payment: Payment, warnings: list[str] | None) -> dict[str, Any]:
        return {spec.wire: read(payment, warnings) for spec, read in self.shown_readers}


class JsonCodec(RowsCodec):
    """A flat JSON object per payment; subclasses give `encode_error` and `error_details`."""

    fmt = "json"
    dialect: JsonDialect

    def payment_fields(self, body: bytes) -> Mapping[str, Any]:
        return require_mapping(_json.loads(body), "a payment")

    def list_items(self, body: bytes) -> list[Mapping[str, Any]]:
        document = _json.loads(body)
        if self.dialect.list_key is not None:
            document = require_mapping(document, "a payment list").get(self.dialect.list_key)
        if not isinstance(document, list):
            raise BadRequest("Expected a list of payments")
        return [require_mapping(item, "a payment") for item in document]

    def encode_payment(
        self, payment: Payment, warnings: list[str] | None = None, *, facts: Facts = NO_FACTS
    ) -> bytes:
        return _json.dumps(self.dialect.payment_object(payment, warnings))

    def encode_payments(
        self,
        payments: Sequence[Payment],
        warnings: list[str] | None = None,
        *,
        facts: Facts = NO_FACTS,
    ) -> bytes:
        return self.listed([self.dialect.payment_object(p, warnings) for p in payments])

    def encode_request(self, fields: Mapping[str, Any], warnings: list[str] | None = None) -> bytes:
        rows = self.dialect.request_rows(fields, warnings)
        return _json.dumps({spec.wire: value for spec, value in rows})

    def finish(self, spec: Spec) -> listing.Finish | None:
        return _json_finish(spec)

    def row_shape(self, parts: list[tuple[Spec, str]]) -> str:
        return listing.json_object(parts)

    def listed(self, items: list[Any]) -> bytes:
        key = self.dialect.list_key
        return _json.dumps(items if key is None else {key: items})


def _json_finish(spec: Spec) -> listing.Finish | None:
    """Amounts become JSON numbers once per distinct value, not once per row."""
    return _json.jsonable if spec.kind in (Kind.AMOUNT, Kind.MONEY) else None
