"""Lists from stored rows: byte for byte what the same payments render as one by one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

import dialects
from dialects import listing
from dialects.model import Facts, InvoiceFacts, InvoiceStatus, Method, Payment
from dialects.xero import NOW

CODECS = [
    pytest.param(unit.codec, fmt, id=f"{name}-{fmt}")
    for name, unit in dialects.units().items()
    for fmt in unit.codec.formats
]
MOMENT = datetime(2026, 11, 20, 9, 30, 15, 123456, tzinfo=UTC)


def _payment(number: int, **fields: Any) -> Payment:
    values: dict[str, Any] = {
        "id": number, "tenant": "acme", "invoice_id": 7, "amount": Decimal("100.50"),
        "paid_at": MOMENT, "method": Method.CASH, "notes": "rent", "reference": "R-1",
        "tax_withheld": Decimal("0.00"), "fee": Decimal("1.25"), "recorded_by": "Ann",
        "recorded_by_email": "ann@example.com", "client_app": "app-1",
        "notify_customer": True, "created_at": MOMENT, "updated_at": MOMENT,
    }  # fmt: skip
    return Payment(**{**values, **fields})


# What the rows must render alike: zones, absent values, repeated and odd amounts,
# markup and CRs in text, methods a dialect has no word for (warnings), own words.
PAYMENTS = [
    _payment(1),
    _payment(2, amount=Decimal("3000"), method=None, notes=None, reference=None),
    _payment(3, paid_at=datetime(2026, 1, 2, 23, 30, tzinfo=timezone(timedelta(hours=-5)))),
    _payment(4, created_at=MOMENT.replace(microsecond=0), amount=Decimal("100.5")),
    _payment(5, method=Method.CREDIT_NOTE, notes="a & <b>\r\nc", notify_customer=False),
    _payment(6, method=Method.CASH, method_label="Bargeld", origin="elsewhere"),
    _payment(7, method=Method.CHEQUE, method_label="MISC", origin="fastbill"),
    _payment(8, tenant="other", client_app=None, tax_withheld=Decimal("2")),
    _payment(9, created_at=datetime(2026, 3, 1, 12, tzinfo=timezone(timedelta(hours=2)))),
    _payment(10, notes='{a} "b"', recorded_by="Tom & Jerry", reference="\\{1}"),
    _payment(11, recorded_by_email="<x@example.com>", notes=None, client_app="a\rb"),
]


def _stored(payment: Payment, columns: tuple[str, ...]) -> listing.Row:
    """A row as SQLite keeps it: amounts and moments as text, the method's word, 0/1."""
    row: list[object] = []
    for name in columns:
        value = getattr(payment, name)
        if isinstance(value, Decimal | datetime):
            value = value.isoformat() if isinstance(value, datetime) else str(value)
        elif isinstance(value, Method):
            value = value.value
        elif isinstance(value, bool):
            value = int(value)
        row.append(value)
    return tuple(row)


@pytest.fixture(autouse=True)
def _fixed_clock() -> Iterator[None]:
    token = NOW.set(lambda: MOMENT)  # Xero's envelope carries the time it was made
    yield
    NOW.reset(token)


@pytest.mark.parametrize(("codec", "fmt"), CODECS)
def test_a_list_from_stored_rows_is_the_list_of_its_payments(
    codec: dialects.Dialect, fmt: dialects.Format
) -> None:
    expected: list[str] = []
    want = codec.codecs[fmt].encode_payments(PAYMENTS, expected)

    for rows in (
        [_stored(payment, codec.row_columns) for payment in PAYMENTS],
        listing.rows_of(PAYMENTS, codec.row_columns),
    ):
        warnings: list[str] = []
        assert codec.codecs[fmt].encode_rows(rows, warnings) == want
        assert warnings == expected


@pytest.mark.parametrize(("codec", "fmt"), CODECS)
@pytest.mark.parametrize("payment", PAYMENTS, ids=lambda p: f"payment-{p.id}")
def test_a_listed_payment_reads_as_the_same_payment_answered_alone(
    codec: dialects.Dialect, fmt: dialects.Format, payment: Payment
) -> None:
    alone: list[str] = []
    listed: list[str] = []
    one = codec.codecs[fmt].decode_payment(
        codec.codecs[fmt].encode_payment(payment, alone), foreign_ids=True
    )

    rows = [_stored(payment, codec.row_columns)]
    (item,) = codec.codecs[fmt].decode_list(
        codec.codecs[fmt].encode_rows(rows, listed), foreign_ids=True
    )

    assert (item.payment, item.ids, item.options) == (one.payment, one.ids, one.options)
    assert listed == alone


# The payments' invoice and deposit account, as a handler hands them to an encoder.
FACTS = Facts(
    {7: InvoiceFacts("INV-7", "EUR", Decimal("12.50"), InvoiceStatus.PARTIAL)}, {"090": "Bank"}
)
IN_AN_ACCOUNT = [payment.model_copy(update={"account_code": "090"}) for payment in PAYMENTS]


@pytest.mark.parametrize(("codec", "fmt"), CODECS)
def test_facts_beside_the_payments_change_only_a_dialect_that_shows_them(
    codec: dialects.Dialect, fmt: dialects.Format
) -> None:
    """Every other dialect's answers stay byte for byte what they were."""
    many = codec.codecs[fmt].encode_payments(IN_AN_ACCOUNT, [])
    one = codec.codecs[fmt].encode_payment(IN_AN_ACCOUNT[0], [])
    told_many = codec.codecs[fmt].encode_payments(IN_AN_ACCOUNT, [], facts=FACTS)
    told_one = codec.codecs[fmt].encode_payment(IN_AN_ACCOUNT[0], [], facts=FACTS)

    assert (told_many != many, told_one != one) == (codec.shows_facts, codec.shows_facts)


@pytest.mark.parametrize(("codec", "fmt"), CODECS)
@pytest.mark.parametrize("payment", IN_AN_ACCOUNT, ids=lambda p: f"payment-{p.id}")
def test_a_listed_payment_tells_of_its_invoice_as_it_does_alone(
    codec: dialects.Dialect, fmt: dialects.Format, payment: Payment
) -> None:
    alone = codec.codecs[fmt].decode_payment(
        codec.codecs[fmt].encode_payment(payment, [], facts=FACTS), foreign_ids=True
    )
    listed = codec.codecs[fmt].encode_payments([payment, *IN_AN_ACCOUNT], [], facts=FACTS)
    item = codec.codecs[fmt].decode_list(listed, foreign_ids=True)[0]

    assert (item.payment, item.ids, item.options) == (alone.payment, alone.ids, alone.options)


def test_a_dialect_lists_only_the_columns_its_fields_read() -> None:
    urlkey = dialects.units()["urlkey"].codec

    assert "tenant" in urlkey.row_columns  # `business` is computed from it
    assert "created_at" not in urlkey.row_columns
    assert set(urlkey.row_columns) <= set(listing.PAYMENT_FIELDS)


def test_moments_kept_as_text_render_as_the_instants_they_name() -> None:
    from dialects import _values

    for moment in (MOMENT, MOMENT.replace(microsecond=0), PAYMENTS[2].paid_at):
        assert moment is not None
        text = moment.isoformat()
        assert _values.iso_z_text(text) == _values.iso_z(moment)
        assert _values.iso_z_text(text, millis=True) == _values.iso_z(moment, millis=True)
        assert _values.iso_offset_text(text) == _values.iso_offset(moment)


@pytest.mark.parametrize("text", ["plain", '{a} "b" \\n {{c}}', "line\nbreak", "\\", ""])
def test_text_written_into_a_compiled_row_is_the_text(text: str) -> None:
    assert eval(f'f"{listing.literal(text)}"') == text  # noqa: S307


def test_a_memo_of_stored_text_keeps_equal_decimals_apart() -> None:
    seen = listing.TextMemo(str, listing.memo(repr, str))

    assert (seen["100.50"], seen[Decimal("100.5")], seen[Decimal("100.50")]) == (
        "100.50",
        "Decimal('100.5')",
        "Decimal('100.50')",
    )
    assert list(seen) == ["100.50"]
