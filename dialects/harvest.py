"""Harvest classic: Rails XML (JSON on request), integer ids, no payment method."""

from __future__ import annotations

from .base import Kind, Spec
from .rails import RailsDialect


class Harvest(RailsDialect):
    name = "harvest"
    root = "payment"
    list_root = "payments"
    realm = "Harvest"
    fields = (
        Spec("amount", "amount", Kind.AMOUNT, "decimal"),
        Spec("created-at", "created_at", Kind.DATETIME, "datetime", writable=False),
        Spec("id", "id", Kind.ID, "integer", writable=False),
        Spec("invoice-id", "invoice_id", Kind.INVOICE_ID, "integer", writable=False),
        Spec("notes", "notes", Kind.TEXT),
        Spec("paid-at", "paid_at", Kind.DATETIME, "datetime"),
        Spec("recorded-by", "recorded_by", Kind.TEXT, writable=False),
        Spec("recorded-by-email", "recorded_by_email", Kind.TEXT, writable=False),
    )
    required = frozenset({"amount", "paid_at"})
    # Over its rate limit Harvest answered 503 with Retry-After.
    statuses = {"rate_limited": 503}
