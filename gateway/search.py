"""A payment search done over a tenant's payments: filters, order and pages, store-neutral."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from dialects.model import Page, Payment, PaymentQuery

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


def select(payments: Sequence[Payment], query: PaymentQuery) -> tuple[list[Payment], Page | None]:
    """The payments `query` selects, in its order, and the page asked for (if any)."""
    if query.deleted:
        return [], _page(0, query)
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
