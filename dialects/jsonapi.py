"""JSON-only dialects: a flat payment object, a list shape of the vendor's choosing."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from typing import Any, ClassVar

from . import _json, listing
from .base import Decoded, Dialect, Format, Kind, Spec, require_mapping
from .errors import BadRequest
from .model import NO_FACTS, Facts, Payment


class JsonDialect(Dialect):
    """A JSON API whose payment is one flat object with the dialect's own keys.

    `list_key` None answers a list as a bare array, else as `{list_key: [...]}`.
    """

    formats = ("json",)
    list_key: ClassVar[str | None] = None

    def payment_fields(self, body: bytes, fmt: Format) -> Mapping[str, Any]:
        return require_mapping(_json.loads(body), "a payment")

    def payment_object(self, payment: Payment, warnings: list[str] | None) -> dict[str, Any]:
        return {spec.wire: read(payment, warnings) for spec, read in self.shown_readers}

    def encode_payment(
        self,
        payment: Payment,
        fmt: Format,
        warnings: list[str] | None = None,
        *,
        facts: Facts = NO_FACTS,
    ) -> bytes:
        return _json.dumps(self.payment_object(payment, warnings))

    def encode_payments(
        self,
        payments: Sequence[Payment],
        fmt: Format,
        warnings: list[str] | None = None,
        *,
        facts: Facts = NO_FACTS,
    ) -> bytes:
        items = [self.payment_object(p, warnings) for p in payments]
        return _json.dumps(items if self.list_key is None else {self.list_key: items})

    @cached_property
    def _row_plan(self) -> listing.Plan:
        return listing.Plan(self, _json_finish)

    @cached_property
    def _row_encoder(self) -> Callable[[Sequence[listing.Row]], list[Any]]:
        return self._row_plan.encoder(listing.json_object)

    @property
    def row_columns(self) -> tuple[str, ...]:
        return self._row_plan.columns

    def encode_rows(
        self, rows: Sequence[listing.Row], fmt: Format, warnings: list[str] | None = None
    ) -> bytes:
        items = self._row_encoder(rows)
        self._row_plan.warnings(rows, warnings)
        return _json.dumps(items if self.list_key is None else {self.list_key: items})

    def decode_list(self, body: bytes, fmt: Format, *, foreign_ids: bool = False) -> list[Decoded]:
        document = _json.loads(body)
        if self.list_key is not None:
            document = require_mapping(document, "a payment list").get(self.list_key)
        if not isinstance(document, list):
            raise BadRequest("Expected a list of payments")
        return [
            self.decode_fields(require_mapping(item, "a payment"), foreign_ids=foreign_ids)
            for item in document
        ]

    def encode_request(
        self, fields: Mapping[str, Any], fmt: Format, warnings: list[str] | None = None
    ) -> bytes:
        return _json.dumps(
            {spec.wire: value for spec, value in self.request_rows(fields, warnings)}
        )


def _json_finish(spec: Spec) -> listing.Finish | None:
    """Amounts become JSON numbers once per distinct value, not once per row."""
    return _json.jsonable if spec.kind in (Kind.AMOUNT, Kind.MONEY) else None
