"""One suite over the registry: round trips in every dialect and format, and the 4x4 grid."""

from __future__ import annotations

from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialects import DIALECTS, Dialect, Format
from dialects.base import Kind, Spec
from dialects.model import Method, Payment

from ..examples import examples

CASES: list[tuple[str, Format]] = [
    (name, fmt) for name, dialect in DIALECTS.items() for fmt in dialect.formats
]
CASE_IDS = [f"{name}-{fmt}" for name, fmt in CASES]

# dialects.md, "Methods": the word each dialect writes for each canonical method
# (None: urlKey has no word, and says so in a warning).
METHOD_TABLE: dict[Method, dict[str, str | None]] = {
    Method.CASH: {"invoiless": "Cash", "fastbill": "CASH", "urlkey": "CASH"},
    Method.CHEQUE: {"invoiless": "Cheque", "fastbill": "MISC", "urlkey": "CHEQUE"},
    Method.CARD: {"invoiless": "Card", "fastbill": "BANK_CARD", "urlkey": "DEBIT_CARD"},
    Method.CREDIT_CARD: {"invoiless": "Card", "fastbill": "CREDIT_CARD", "urlkey": "CREDIT_CARD"},
    Method.DEBIT_CARD: {"invoiless": "Card", "fastbill": "BANK_CARD", "urlkey": "DEBIT_CARD"},
    Method.BANK_TRANSFER: {
        "invoiless": "BankTransfer",
        "fastbill": "BANK_TRANSFER",
        "urlkey": "ACCOUNT_TRANSFER",
    },
    Method.DIRECT_DEBIT: {
        "invoiless": "BankTransfer",
        "fastbill": "DEBIT",
        "urlkey": "ACCOUNT_TRANSFER",
    },
    Method.PAYPAL: {"invoiless": "Other", "fastbill": "PAYPAL", "urlkey": "ACCOUNT_TRANSFER"},
    Method.UPI: {"invoiless": "Other", "fastbill": "MISC", "urlkey": "UPI"},
    Method.DEMAND_DRAFT: {"invoiless": "Cheque", "fastbill": "MISC", "urlkey": "DD"},
    Method.CREDIT_NOTE: {"invoiless": "Other", "fastbill": "CREDIT_NOTE", "urlkey": None},
    Method.COUPON: {"invoiless": "Other", "fastbill": "COUPON", "urlkey": None},
    Method.OTHER: {"invoiless": "Other", "fastbill": "MISC", "urlkey": None},
}

# What each vendor word means when read (the vendor pages' word lists).
WORD_MEANS: dict[str, dict[str, Method]] = {
    "invoiless": {
        "Cash": Method.CASH,
        "Cheque": Method.CHEQUE,
        "Card": Method.CARD,
        "BankTransfer": Method.BANK_TRANSFER,
        "Other": Method.OTHER,
    },
    "fastbill": {
        "CREDIT_NOTE": Method.CREDIT_NOTE,
        "BANK_CARD": Method.CARD,
        "BANK_TRANSFER": Method.BANK_TRANSFER,
        "DEBIT": Method.DIRECT_DEBIT,
        "CASH": Method.CASH,
        "PAYPAL": Method.PAYPAL,
        "CREDIT_CARD": Method.CREDIT_CARD,
        "COUPON": Method.COUPON,
        "MISC": Method.OTHER,
    },
    "urlkey": {
        "ACCOUNT_TRANSFER": Method.BANK_TRANSFER,
        "CASH": Method.CASH,
        "CHEQUE": Method.CHEQUE,
        "CREDIT_CARD": Method.CREDIT_CARD,
        "DEBIT_CARD": Method.DEBIT_CARD,
        "DD": Method.DEMAND_DRAFT,
        "UPI": Method.UPI,
    },
}

# --- strategies -------------------------------------------------------------------

amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("999999999999.99"), places=2)
fees = st.decimals(min_value=Decimal("0.00"), max_value=Decimal("999999999999.99"), places=2)
# Every dialect writes whole seconds at least (urlKey milliseconds: see the test below).
moments = st.datetimes(
    min_value=datetime(1, 1, 1),
    max_value=datetime(9999, 12, 31, 23, 59, 59),
    timezones=st.just(UTC),
).map(lambda moment: moment.replace(microsecond=0))
# Text a dialect accepts: no control characters but tab and line ends, nothing UTF-8
# or XML 1.0 cannot carry.
texts = st.text(
    st.characters(
        codec="utf-8",
        exclude_categories=["Cc"],
        include_characters="\t\n\r",
        exclude_characters="\ufffe\uffff",
    ),
    max_size=500,
)
account_codes = st.from_regex(r"[0-9A-Za-z]{1,10}", fullmatch=True)
# The decimal integer id parser reads at most 18 digits.
ids = st.integers(min_value=1, max_value=10**18 - 1)


# Built once, not at each draw: hypothesis validates a strategy the first time it is drawn.
maybe_texts = st.none() | texts
maybe_tenants = st.none() | st.sampled_from(["acme", "globex"])
maybe_account_codes = st.none() | account_codes
maybe_uuids = st.none() | st.uuids().map(str)
maybe_moments = st.none() | moments


_LABELS: dict[str, st.SearchStrategy[str | None]] = {}


def maybe_labels(dialect: Dialect) -> st.SearchStrategy[str | None]:
    """None or one of the dialect's words for a method (one strategy per dialect)."""
    if dialect.name not in _LABELS:
        _LABELS[dialect.name] = st.none() | st.sampled_from(sorted(dialect.methods))
    return _LABELS[dialect.name]


@st.composite
def payments(draw: st.DrawFn, dialect: Dialect) -> Payment:
    """A canonical payment as the store would hold one last written through `dialect`."""
    method: Method | None = None
    label: str | None = None
    if dialect.methods:
        label = draw(maybe_labels(dialect))
        method = None if label is None else dialect.methods[label]
    return Payment(
        id=draw(ids),
        tenant=draw(maybe_tenants),
        invoice_id=draw(ids),
        amount=draw(amounts),
        paid_at=draw(moments),
        method=method,
        method_label=label,
        origin=None if label is None else dialect.name,
        notes=draw(maybe_texts),
        reference=draw(maybe_texts),
        account_code=draw(maybe_account_codes),
        account_id=draw(maybe_uuids),
        tax_withheld=draw(fees),
        fee=draw(fees),
        recorded_by=draw(maybe_texts),
        recorded_by_email=draw(maybe_texts),
        client_app=draw(maybe_texts),
        notify_customer=draw(st.booleans()),
        created_at=draw(maybe_moments),
        updated_at=draw(maybe_moments),
    )


# --- helpers ----------------------------------------------------------------------


def carried(dialect: Dialect) -> list[Spec]:
    """The fields a dialect's payment document carries both ways."""
    return [spec for spec in dialect.shown if spec.kind is not Kind.CONST]


def midnight(moment: datetime) -> datetime:
    return datetime.combine(moment.date(), time(), UTC)


def expected_value(spec: Spec, payment: Payment) -> Any:
    value = getattr(payment, spec.attr)
    return midnight(value) if spec.kind is Kind.DATE and value is not None else value


def assert_carried(dialect: Dialect, sent: Payment, back: Payment) -> None:
    specs = carried(dialect)
    for spec in specs:
        assert getattr(back, spec.attr) == expected_value(spec, sent), spec.wire
    has_method = any(spec.kind is Kind.METHOD for spec in specs)
    if has_method:
        assert (back.method_label, back.origin) == (sent.method_label, sent.origin)
    others = set(Payment.model_fields) - {spec.attr for spec in specs}
    if has_method:
        others -= {"method_label", "origin"}
    for attr in others:
        assert getattr(back, attr) == Payment.model_fields[attr].default, attr


def date_only(dialect: Dialect) -> bool:
    return any(spec.attr == "paid_at" and spec.kind is Kind.DATE for spec in dialect.fields)


def carries(dialect: Dialect, attr: str) -> bool:
    return any(spec.attr == attr for spec in carried(dialect))


# --- every dialect, every format ------------------------------------------------


@pytest.mark.parametrize(("name", "fmt"), CASES, ids=CASE_IDS)
@examples(100)
@given(data=st.data())
def test_payment_round_trips_every_carried_field(
    name: str, fmt: Format, data: st.DataObject
) -> None:
    dialect = DIALECTS[name]
    payment = data.draw(payments(dialect))
    back = dialect.codecs[fmt].decode_payment(dialect.codecs[fmt].encode_payment(payment)).payment
    assert_carried(dialect, payment, back)


@pytest.mark.parametrize(("name", "fmt"), CASES, ids=CASE_IDS)
@examples(50)
@given(data=st.data())
def test_payment_list_round_trips_in_order(name: str, fmt: Format, data: st.DataObject) -> None:
    dialect = DIALECTS[name]
    sent = data.draw(st.lists(payments(dialect), max_size=3))
    back = dialect.codecs[fmt].decode_payments(dialect.codecs[fmt].encode_payments(sent))
    assert len(back) == len(sent)
    for one, other in zip(sent, back, strict=True):
        assert_carried(dialect, one, other)


@pytest.mark.parametrize(("name", "fmt"), CASES, ids=CASE_IDS)
def test_encoding_is_stable_after_one_round_trip(name: str, fmt: Format) -> None:
    dialect = DIALECTS[name]
    payment = Payment(
        id=17,
        invoice_id=5,
        amount=Decimal("1238.00"),
        paid_at=datetime(2008, 2, 14, tzinfo=UTC),
        notes='Tab\tCRLF\r\nbare CR\r <&> "quoted" \u00e9\U0001f600',
    )
    wire = dialect.codecs[fmt].encode_payment(payment)
    decoded = dialect.codecs[fmt].decode_payment(wire).payment
    assert decoded.notes == payment.notes
    assert dialect.codecs[fmt].encode_payment(decoded) == wire


def test_urlkey_keeps_milliseconds_of_the_payment_date() -> None:
    urlkey = DIALECTS["urlkey"]
    paid = datetime(2024, 8, 18, 12, 8, 38, 123000, tzinfo=UTC)
    wire = urlkey.codecs["json"].encode_payment(Payment(amount=Decimal("1.00"), paid_at=paid))
    assert b'"paymentDate":"2024-08-18T12:08:38.123Z"' in wire
    assert urlkey.codecs["json"].decode_payment(wire).payment.paid_at == paid


# --- the 4x4 translation grid -----------------------------------------------------

GRID = [(a, fa, b, fb) for a, fa in CASES for b, fb in CASES]
GRID_IDS = [f"{a}-{fa}-to-{b}-{fb}" for a, fa, b, fb in GRID]


def expected_word(source: Payment, target: Dialect) -> str | None:
    if source.origin == target.name:
        return source.method_label
    if source.method is None:
        return None
    return METHOD_TABLE[source.method][target.name]


@pytest.mark.parametrize(("a", "fa", "b", "fb"), GRID, ids=GRID_IDS)
@examples(25)
@given(data=st.data())
def test_translation_keeps_amount_date_notes_ids_and_maps_method(
    a: str, fa: Format, b: str, fb: Format, data: st.DataObject
) -> None:
    source, target = DIALECTS[a], DIALECTS[b]
    document = source.codecs[fa].encode_payment(data.draw(payments(source)))
    decoded = source.codecs[fa].decode_payment(document).payment
    warnings: list[str] = []
    translated = (
        target.codecs[fb]
        .decode_payment(target.codecs[fb].encode_payment(decoded, warnings))
        .payment
    )

    assert translated.amount == decoded.amount
    assert decoded.paid_at is not None
    paid = midnight(decoded.paid_at) if date_only(target) else decoded.paid_at
    assert translated.paid_at == paid
    assert translated.notes == decoded.notes
    assert translated.id == decoded.id
    assert translated.invoice_id == (decoded.invoice_id if carries(target, "invoice_id") else None)

    if not target.methods:
        assert translated.method is None
        return
    word = expected_word(decoded, target)
    assert translated.method_label == word
    assert translated.method == (None if word is None else WORD_MEANS[b][word])
    if word is None and decoded.method is not None:
        assert warnings == [
            f"method {decoded.method.value} has no {b} equivalent; sent as no method"
        ]
    else:
        assert warnings == []


@pytest.mark.parametrize("method", list(Method), ids=[m.value for m in Method])
@pytest.mark.parametrize("name", sorted(WORD_MEANS))
def test_canonical_method_is_written_as_the_table_word(name: str, method: Method) -> None:
    dialect = DIALECTS[name]
    paid = datetime(2024, 1, 1, tzinfo=UTC)
    payment = Payment(amount=Decimal("1.00"), paid_at=paid, method=method)
    warnings: list[str] = []
    wire = dialect.codecs[dialect.formats[0]].encode_payment(payment, warnings)
    back = dialect.codecs[dialect.formats[0]].decode_payment(wire).payment
    word = METHOD_TABLE[method][name]
    assert back.method_label == word
    missing = f"method {method.value} has no {name} equivalent; sent as no method"
    assert warnings == ([] if word is not None else [missing])


@pytest.mark.parametrize("name", sorted(WORD_MEANS))
def test_dialect_reads_every_vendor_word_as_documented(name: str) -> None:
    assert dict(DIALECTS[name].methods) == WORD_MEANS[name]
