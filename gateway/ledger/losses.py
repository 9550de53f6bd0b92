"""What a dialect cannot carry: money it has no field for is refused, other values dropped.

Both the proxy (a write re-encoded for its backend) and translation (a document
re-encoded for another dialect) ask these before they encode.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dialects import Dialect
from dialects.model import ZERO

# Optional canonical fields: dropped (with a warning) where the backend has no place.
OPTIONAL = ("notes", "reference", "notify_customer", "mark_invoice_paid", "customer")
MONEY = ("tax_withheld", "fee")


def lost_money(values: Mapping[str, Any], target: Dialect) -> list[str]:
    """The money in `values` that `target` has no field for: refused, never dropped."""
    return [a for a in MONEY if values.get(a, ZERO) != ZERO and a not in target.settable]


def lost_fields(values: Mapping[str, Any], target: Dialect) -> list[str]:
    """The optional values `target` has no field for: dropped, with a warning."""
    return [a for a in OPTIONAL if values.get(a) and a not in target.settable]
