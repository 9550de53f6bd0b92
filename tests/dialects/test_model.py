"""The canonical model: payments made from stored rows are the payments validation makes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from dialects.model import Method, Payment, stored_payment


def _row() -> dict[str, Any]:
    moment = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    defaults = {name: field.get_default() for name, field in Payment.model_fields.items()}
    return defaults | {
        "id": 7, "tenant": "acme", "invoice_id": 3, "amount": Decimal("12.50"),
        "paid_at": moment, "method": Method.CARD, "method_label": "Card", "origin": "invoiless",
        "notes": "n", "reference": None, "tax_withheld": Decimal("0.00"), "fee": Decimal("1.00"),
        "recorded_by": "Ann", "recorded_by_email": None, "client_app": None,
        "notify_customer": True, "created_at": moment, "updated_at": moment,
    }  # fmt: skip


def test_a_stored_payment_equals_the_validated_one() -> None:
    made = stored_payment(_row())
    validated = Payment(**_row())
    assert made == validated
    assert made.model_dump() == validated.model_dump()
    assert made.model_fields_set == validated.model_fields_set
    assert made.settled == Decimal("13.50")
    assert made.model_copy(update={"id": 8}).id == 8


def test_a_stored_payment_stays_frozen() -> None:
    with pytest.raises(ValueError):
        stored_payment(_row()).amount = Decimal(1)  # type: ignore[misc]


@pytest.mark.parametrize("change", ["missing", "extra"])
def test_a_row_without_exactly_every_field_is_refused(change: str) -> None:
    row = _row()
    if change == "missing":
        del row["notes"]
    else:
        row["colour"] = "red"
    with pytest.raises(ValueError, match="fields"):
        stored_payment(row)
