"""QuickBooks' query language as the clients write it, read into plans over whole payments."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from dialects.model import Payment
from dialects.quickbooks_query import (
    QueryInvalid,
    QueryUnreadable,
    groups_of,
    read,
)


def parse_id(text: object) -> int | None:
    return int(text) if isinstance(text, str) and text.isdigit() else None


def plan(statement: str):  # type: ignore[no-untyped-def]
    return read(statement, parse_id)


def row(id: int, invoice: int, amount: str, day: int, *, group: int | None = None,
        customer: str = "58", reference: str | None = None) -> Payment:  # fmt: skip
    moment = datetime(2026, 3, day, tzinfo=UTC)
    payment = Payment(id=id, invoice_id=invoice, amount=Decimal(amount), paid_at=moment,
                      reference=reference, created_at=moment, updated_at=moment)  # fmt: skip
    extra = {"group_id": group or id, "customer": customer}
    known = {k: v for k, v in extra.items() if k in Payment.model_fields}
    return payment.model_copy(update=known)


ROWS = [
    row(1, 10, "5.00", 1, reference="A-1"),
    row(2, 10, "7.00", 2, customer="77"),
    row(3, 11, "3.00", 2, group=2, customer="77"),  # the second line of payment 2
    row(4, 12, "20.00", 9, reference="B-9"),
]


def ids(statement: str) -> list[int]:
    page, _ = plan(statement).select(groups_of(ROWS))
    return [group.id for group in page]


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("SELECT * FROM Payment", [1, 2, 4]),
        ("select * from payment where TxnDate >= '2026-03-02' orderby TxnDate desc", [4, 2]),
        ("SELECT * FROM Payment  MAXRESULTS 2", [1, 2]),
        ("SELECT * FROM Payment ORDER BY TotalAmt DESC STARTPOSITION 2 MAXRESULTS 1", [2]),
        ("SELECT * FROM Payment WHERE TotalAmt = '10.00'", [2]),  # 7 + 3: the whole payment's
        ("SELECT * FROM Payment WHERE TotalAmt > 6 AND TotalAmt < '15'", [2]),
        ("SELECT * FROM Payment WHERE Id IN ('1', '4')", [1, 4]),
        ("SELECT * FROM Payment WHERE PaymentRefNum LIKE 'b-%'", [4]),
        ("SELECT * FROM Payment WHERE Line.LinkedTxn.TxnId = '11'", [2]),
        ("SELECT * FROM Payment WHERE MetaData.CreateTime < '2026-03-02T00:00:00-07:00'", [1, 2]),
        ("SELECT * FROM Payment WHERE PaymentRefNum = 'it\\'s'", []),
    ],
)
def test_statements_select_whole_payments(statement: str, expected: list[int]) -> None:
    assert ids(statement) == expected


def test_count_counts_payments_not_lines() -> None:
    counted = plan("SELECT COUNT(*) FROM Payment WHERE TxnDate < '2026-03-05'")
    assert counted.count and counted.select(groups_of(ROWS))[1] == 2


def test_maxresults_is_clamped_and_the_store_selects_what_it_can() -> None:
    found = plan("SELECT * FROM Payment WHERE Id = '4' AND Line.LinkedTxn.TxnId IN ('12', 'x')"
                 " MAXRESULTS 5000")  # fmt: skip
    assert found.max_results == 1000
    query = found.search()
    assert query.invoice_ids == (12, -1)


@pytest.mark.parametrize(
    "statement",
    ["", "SELEC * FROM Payment", "SELECT * FROM Payment WHERE", "SELECT * FROM Payment WHERE Id",
     "SELECT * FROM Payment WHERE Id = '1' OR Id = '2'", "SELECT * FROM Payment LIMIT 3",
     "SELECT * FROM Payment WHERE PrivateNote = 'it's'"],
)  # fmt: skip
def test_unreadable_statements_are_4000(statement: str) -> None:
    with pytest.raises(QueryUnreadable) as refused:
        plan(statement)
    assert refused.value.code == "4000"


@pytest.mark.parametrize(
    "statement",
    ["SELECT * FROM Invoice", "SELECT Id FROM Payment", "SELECT * FROM Payment WHERE Foo = '1'",
     "SELECT * FROM Payment WHERE TotalAmt = 'ten'", "SELECT * FROM Payment WHERE TxnDate > 'x'",
     "SELECT * FROM Payment ORDERBY PrivateNote", "SELECT * FROM Payment STARTPOSITION 0"],
)  # fmt: skip
def test_invalid_statements_are_4001(statement: str) -> None:
    with pytest.raises(QueryInvalid) as refused:
        plan(statement)
    assert refused.value.code == "4001"
