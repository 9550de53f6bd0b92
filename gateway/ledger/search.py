"""A payment search done over a tenant's payments: filters, order and pages, store-neutral."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from dialects.model import COMPARISONS, Page, Payment, PaymentQuery

_COMPARE = COMPARISONS


def select(payments: Sequence[Payment], query: PaymentQuery) -> tuple[list[Payment], Page | None]:
    """The payments `query` selects, in its order, and the page asked for (if any)."""
    found = [p for p in payments if _matches(p, query)]
    for attr, descending in reversed(query.order):
        found.sort(key=lambda p: _key(getattr(p, attr)), reverse=descending)
    if query.page is None:
        return found, None
    start = (query.page - 1) * query.page_size
    return found[start : start + query.page_size], _page(len(found), query)


def _matches(payment: Payment, query: PaymentQuery) -> bool:
    if query.invoice_ids is not None and payment.invoice_id not in query.invoice_ids:
        return False
    if query.payment_ids is not None and payment.id not in query.payment_ids:
        return False
    if query.group_ids is not None and payment.group_id not in query.group_ids:
        return False
    if query.customers is not None and payment.customer not in query.customers:
        return False
    if query.references is not None and payment.reference not in query.references:
        return False
    if payment.deleted_at is not None and not (query.deleted or (query.voided and payment.voided)):
        return False
    since = query.modified_since  # changed at or after it: a sync misses no change
    if since is not None and (payment.updated_at is None or payment.updated_at < since):
        return False
    if query.where is not None and not query.where(payment):
        return False
    paid = payment.paid_at
    return all(paid is not None and _COMPARE[op](paid, moment) for op, moment in query.paid)


def _key(value: object) -> tuple[bool, Any]:
    """Absent values first, then the values themselves (datetimes, amounts, text, ids)."""
    if isinstance(value, datetime):
        return (value is not None, value.timestamp())
    return (value is not None, value if value is not None else 0)


def _page(count: int, query: PaymentQuery) -> Page | None:
    if query.page is None:
        return None
    return Page(query.page, query.page_size, math.ceil(count / query.page_size), count)
