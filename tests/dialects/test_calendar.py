"""Dates at the calendar's edges and numbers in digits that are not ASCII, in process.

Every date field of every registered dialect is read with values on both sides of
what UTC can hold (years 0001 to 9999): an offset that moves a value past either end,
Xero's `/Date(ms)/` with any count of milliseconds. What UTC cannot hold is refused as
a field problem (a 4xx in the caller's dialect), never an exception that escapes; what
it can hold is read as the instant it names. Every instant UTC holds is written by
every dialect in every format (an answer, a list, a request to a backend) and read
back to the same day.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import dialects
from dialects import _values, xero_query
from dialects.base import Kind, Spec
from dialects.errors import BadQuery, ValidationFailed
from dialects.model import Method, Payment
from dialects.xero import Xero

from ..examples import examples
from ..registry import ALL

NAMES = ALL
_XERO_CODEC = Xero()
_XERO = (_XERO_CODEC.parse_id, _XERO_CODEC.elements)
DATE_FIELDS = [
    (name, spec)
    for name in NAMES
    for spec in dialects.get(name).fields
    if spec.kind in (Kind.DATE, Kind.DATETIME)
]
FIELD_IDS = [f"{name}-{spec.wire}" for name, spec in DATE_FIELDS]
FIRST = datetime(1, 1, 1, tzinfo=UTC)
LAST = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
MICROS_PER_DAY = 86_400_000_000
# Microseconds from 0001-01-01T00:00Z past the last instant UTC holds.
SPAN = (date(9999, 12, 31).toordinal()) * MICROS_PER_DAY
EPOCH_MICROS = (date(1970, 1, 1).toordinal() - 1) * MICROS_PER_DAY
EDGE_DATES = [date(1, 1, 1), date(1, 1, 2), date(9999, 12, 30), date(9999, 12, 31)]
EDGES = [
    "9999-12-31T23:00:00-05:00",
    "0001-01-01T00:30:00+01:00",
    "9999-12-31T23:59:59.999999-00:01",
    "0001-01-01T00:00:00+00:01",
    "9999-12-31 23:59:59 -2359",
]


@st.composite
def iso_texts(draw: st.DrawFn) -> tuple[str, int | None]:
    """An ISO date-time with an offset, and its microseconds from year 1 in UTC (None: out)."""
    day = draw(st.sampled_from(EDGE_DATES) | st.dates())
    moment = draw(st.sampled_from([time(), time(23, 59, 59, 999999)]) | st.times())
    minutes = draw(st.integers(-(23 * 60 + 59), 23 * 60 + 59))
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    zone = draw(
        st.sampled_from(
            [f"{sign}{hours:02}:{rest:02}", f"{sign}{hours:02}{rest:02}"]
            if minutes
            else ["Z", "", "+00:00", "UTC", "-0000"]
        )
    )
    separator = draw(st.sampled_from(["T", " "]))
    clock = moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")
    local = (day.toordinal() - 1) * MICROS_PER_DAY + (
        ((moment.hour * 60 + moment.minute) * 60 + moment.second) * 1_000_000 + moment.microsecond
    )
    utc = local - minutes * 60_000_000
    return f"{day.isoformat()}{separator}{clock}{zone}", utc if 0 <= utc < SPAN else None


@st.composite
def ms_texts(draw: st.DrawFn) -> tuple[str, int | None]:
    """Xero's `/Date(ms[+HHMM])/`, and its microseconds from year 1 (None: out of range)."""
    first = -EPOCH_MICROS // 1000
    last = (SPAN - EPOCH_MICROS) // 1000 - 1
    ms = draw(
        st.sampled_from([first - 1, first, last, last + 1, 0, -1])
        | st.integers(min_value=-(10**15) + 1, max_value=10**15 - 1)
    )
    offset = draw(st.sampled_from(["", "+0000", "-0500", "+1400"]))
    utc = EPOCH_MICROS + ms * 1000
    return f"/Date({ms}{offset})/", utc if 0 <= utc < SPAN else None


def instant(micros: int) -> datetime:
    return FIRST + timedelta(microseconds=micros)


def read(name: str, spec: Spec, value: str) -> datetime | None:
    """The field as the dialect reads it (None if refused as a field problem)."""
    try:
        decoded = dialects.get(name).decode_fields({spec.wire: value}, foreign_ids=True)
    except ValidationFailed as exc:
        assert set(exc.fields) == {spec.attr}, exc.fields
        return None
    found = dict(decoded.payment).get(spec.attr, decoded.options.get(spec.attr))
    assert isinstance(found, datetime) and found.utcoffset() == timedelta(0)
    return found


def expected(spec: Spec, micros: int) -> datetime:
    moment = instant(micros)
    if spec.kind is Kind.DATE:
        return datetime.combine(moment.date(), time(), UTC)
    return moment


@pytest.mark.parametrize(("name", "spec"), DATE_FIELDS, ids=FIELD_IDS)
@examples(150)
@given(case=iso_texts() | ms_texts())
def test_every_date_field_refuses_what_utc_cannot_hold_and_reads_what_it_can(
    name: str, spec: Spec, case: tuple[str, int | None]
) -> None:
    text, micros = case
    found = read(name, spec, text)
    if micros is None:
        assert found is None, (text, found)
    elif found is not None:
        assert found == expected(spec, micros), text
    elif not text.startswith("/Date("):
        raise AssertionError(f"{name} refused {text!r}, which UTC holds")


@pytest.mark.parametrize(("name", "spec"), DATE_FIELDS, ids=FIELD_IDS)
@pytest.mark.parametrize("text", EDGES)
def test_the_issues_examples_are_field_problems(name: str, spec: Spec, text: str) -> None:
    assert read(name, spec, text) is None


def test_xero_takes_every_ms_date_utc_holds_and_no_other() -> None:
    spec = next(s for s in dialects.get("xero").fields if s.attr == "updated_at")
    assert read("xero", spec, "/Date(-62135596800000)/") == FIRST
    assert read("xero", spec, "/Date(253402300799999+0000)/") == LAST.replace(microsecond=999000)
    for outside in (
        "/Date(-62135596800001)/",
        "/Date(253402300800000)/",
        "/Date(-999999999999999)/",
    ):
        assert read("xero", spec, outside) is None


@examples(300)
@given(moment=st.datetimes(min_value=FIRST.replace(tzinfo=None), timezones=st.just(UTC)))
@example(moment=FIRST)
@example(moment=LAST)
def test_every_instant_utc_holds_is_written_and_read_back_in_every_dialect(
    moment: datetime,
) -> None:
    payment = Payment(
        id=7,
        invoice_id=3,
        amount=Decimal("12.50"),
        paid_at=moment,
        method=Method.CASH,
        created_at=moment,
        updated_at=moment,
    )
    for name in NAMES:
        codec = dialects.get(name)
        for fmt in codec.formats:
            body = codec.codecs[fmt].encode_payment(payment, [])
            back = codec.codecs[fmt].decode_payment(body, foreign_ids=True).payment
            assert back.paid_at is not None and back.paid_at.date() == moment.date(), name
            listed = codec.codecs[fmt].encode_payments([payment, payment], [])
            assert [p.paid_at for p in codec.codecs[fmt].decode_payments(listed)] == [
                back.paid_at
            ] * 2
            sent = codec.codecs[fmt].encode_request(dict(payment), [])  # as a proxy sends it
            assert codec.codecs[fmt].decode_payment(sent).payment.paid_at == back.paid_at, name


@pytest.mark.parametrize(
    "where",
    [
        "Date >= DateTime(10000, 1, 1)",
        "Date >= DateTime(0, 1, 1)",
        "Date >= DateTime(2026, 2, 30)",
        "Date >= DateTime(2026, 1, 1, 24)",
        "Date >= DateTime(\uff12\uff10\uff12\uff16, 1, 1)",
        "Date >= DateTime(2026, \u0661, 1)",
        "Date >= DateTime(2026, 1, 1_0)",
        'Date >= "9999-12-31T23:00:00-05:00"',
        'Date >= "0001-01-01T00:30:00+01:00"',
    ],
)
def test_a_xero_filter_date_utc_cannot_hold_is_a_query_problem(where: str) -> None:
    with pytest.raises(BadQuery):
        xero_query.read({"where": where}, *_XERO)


def test_a_xero_filter_takes_the_calendars_edges() -> None:
    query = xero_query.read(
        {"where": "Date >= DateTime(1, 1, 1) AND Date <= DateTime(9999, 12, 31, 23, 59, 59)"},
        *_XERO,
    )
    assert query is not None


# --- digits ---------------------------------------------------------------------------

NOT_ASCII_DIGITS = [
    chr(c)
    for c in range(0x80, 0x110000)
    if (chr(c).isdigit() or chr(c).isdecimal() or chr(c).isnumeric())
    and unicodedata.category(chr(c)) != "Cs"
]


def test_the_set_of_hostile_digits_has_the_issues_examples() -> None:
    assert {"²", "１", "٣"} <= set(NOT_ASCII_DIGITS)


@examples(300)
@given(
    head=st.text(alphabet="0123456789", max_size=4),
    digit=st.sampled_from(NOT_ASCII_DIGITS),
    tail=st.text(alphabet="0123456789", max_size=4),
    base=st.sampled_from([10, 16]),
)
def test_a_number_with_any_digit_that_is_not_ascii_is_no_number(
    head: str, digit: str, tail: str, base: int
) -> None:
    assert _values.ascii_number(head + digit + tail, base=base) is None


@examples(200)
@given(number=st.integers(min_value=0, max_value=10**18 - 1))
def test_ascii_digits_read_as_their_number(number: int) -> None:
    assert _values.ascii_number(str(number)) == number
    assert _values.ascii_number(format(number, "x"), base=16) == number


@pytest.mark.parametrize("text", ["", "+1", "-1", " 1", "1 ", "1_0", "0x1", "1" * 19])
def test_signs_spaces_underscores_and_overlong_numbers_are_no_number(text: str) -> None:
    assert _values.ascii_number(text) is None


@examples(200)
@given(
    name=st.sampled_from(["page", "pageSize"]),
    digit=st.sampled_from(NOT_ASCII_DIGITS),
    head=st.text(alphabet="0123456789", max_size=3),
)
def test_a_xero_page_number_in_digits_that_are_not_ascii_is_a_query_problem(
    name: str, digit: str, head: str
) -> None:
    with pytest.raises(BadQuery, match=f"{name} must be a whole number"):
        xero_query.read({name: head + digit}, *_XERO)


def test_no_code_of_the_gateway_asks_python_whether_text_is_a_digit() -> None:
    """`isdigit`, `isdecimal` and `isnumeric` say yes to `²`, `１`, `٣`: numbers are read by
    `_values.ascii_number` alone (test clients under dialects/testing/ are not the gateway)."""
    root = Path(dialects.__file__).parent.parent
    sources = [*root.joinpath("gateway").rglob("*.py"), *root.joinpath("dialects").glob("*.py")]
    asking = re.compile(r"\.is(?:digit|decimal|numeric)\(")
    found = [
        f"{path.relative_to(root)}:{number}"
        for path in sources
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if asking.search(line) and not line.lstrip().startswith("#")
    ]
    assert len(sources) > 20 and not found, found
