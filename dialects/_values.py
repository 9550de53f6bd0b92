"""Strict parsing and vendor-style formatting of scalar wire values (money, dates, ids)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

_AMOUNT = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
_INTEGER = re.compile(r"(?:0|[1-9][0-9]{0,17})")
# `[0-9]` in a str pattern is these ten code points and no others; `\d`, `str.isdigit()`
# and `int()` also take `²`, `１`, `٣` and (int) signs, spaces and underscores.
_DIGITS = {10: re.compile(r"[0-9]+"), 16: re.compile(r"[0-9A-Fa-f]+")}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[T ]"
    r"(?P<time>[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?)"
    r"\s?(?P<tz>Z|UTC|[+-][0-9]{2}:?[0-9]{2})?"
)
MAX_DIGITS = 14
MAX_DECIMALS = 2
CENT = Decimal("0.01")


class BadNumber(str):
    """A JSON number literal no amount or id may be: exponent form or absurdly long."""


class ValueProblem(ValueError):
    """A wire value that cannot be taken as it is; the message is for the caller."""


def parse_amount(value: object, *, decimals: int = MAX_DECIMALS) -> Decimal:
    """A money amount from a wire value, exact or refused: never rounded, never a float.

    JSON numbers arrive as Decimal (parsed from their literal) or int; strings must
    be plain decimal literals (no exponent, sign of plus, spaces or underscores).
    """
    if isinstance(value, bool) or value is None or isinstance(value, BadNumber):
        raise ValueProblem("is not a plain decimal number")
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueProblem("is not a number")
        amount = value
    elif isinstance(value, str) and _AMOUNT.fullmatch(value):
        amount = Decimal(value)
    else:
        raise ValueProblem("is not a number")
    places = _decimals(amount)
    if places > decimals:
        raise ValueProblem(f"must have at most {decimals} decimal places")
    whole = max(0, amount.adjusted() + 1) if amount else 0
    if whole + places > MAX_DIGITS:
        raise ValueProblem(f"must have at most {MAX_DIGITS} digits")
    return amount.quantize(CENT)


def _decimals(amount: Decimal) -> int:
    """Significant decimal places: `5.10` has one, `5.000` none."""
    exponent = amount.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def ascii_number(text: str, *, digits: int = 18, base: int = 10) -> int | None:
    """A whole number written in ASCII digits alone (at most `digits` of them), else None.

    The one reader of every number the gateway takes from a query, a header or a
    backend's framing: `isdigit()` is true for `²`, `１` and `٣`, and `int()`
    takes the last two, signs, spaces and underscores, none of which a number on the
    wire may be. Leading zeros are the caller's to refuse (HTTP allows them).
    """
    if len(text) > digits or not _DIGITS[base].fullmatch(text):
        return None
    return int(text, base)


def parse_integer(value: object) -> int:
    if isinstance(value, bool):
        raise ValueProblem("is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        number = ascii_number(value)
        assert number is not None
        return number
    raise ValueProblem("is not an integer")


def parse_date(value: object) -> date:
    """A calendar date; a datetime is accepted and its date (in UTC) taken."""
    return parse_datetime(value).date()


def parse_datetime(value: object) -> datetime:
    """An instant, in UTC. A date alone is midnight UTC; no zone means UTC, as Rails did."""
    if not isinstance(value, str):
        raise ValueProblem("is not a date")
    if _DATE.fullmatch(value):
        return _utc(lambda: datetime.combine(date.fromisoformat(value), time(), UTC), "date")
    match = _DATETIME.fullmatch(value)
    if match is None:
        raise ValueProblem("is not a valid datetime")
    tz = match["tz"] or "Z"
    tz = "+00:00" if tz in ("Z", "UTC") else tz
    text = f"{match['date']}T{match['time']}{tz}"
    return _utc(lambda: datetime.fromisoformat(text), "datetime")


def moment(*parts: int) -> datetime:
    """The UTC instant of (year, month, day[, hour, minute, second]), or refused."""
    year, month, day, hour, minute, second = (*parts, 0, 0, 0)[:6]
    return _utc(lambda: datetime(year, month, day, hour, minute, second, tzinfo=UTC), "date")


def from_epoch_ms(milliseconds: int) -> datetime:
    """The instant `milliseconds` after 1970-01-01T00:00Z (before it if negative), or refused."""
    return _utc(lambda: _EPOCH + timedelta(milliseconds=milliseconds), "date")


def epoch_ms(instant: datetime) -> int:
    """Whole milliseconds from 1970-01-01T00:00Z to `instant` (floored)."""
    return (instant.astimezone(UTC) - _EPOCH) // timedelta(milliseconds=1)


def _utc(make: Callable[[], datetime], what: str) -> datetime:
    """The one way a wire value becomes an instant: built, then moved to UTC, or refused.

    A value whose date does not exist, or whose offset moves it before year 1 or past
    9999 in UTC (`9999-12-31T23:00:00-05:00`), is a ValueProblem like any other bad
    value, never an OverflowError escaping into a 500.
    """
    try:
        return make().astimezone(UTC)
    except OverflowError as exc:
        raise ValueProblem("is out of range (years 0001 to 9999, in UTC)") from exc
    except ValueError as exc:
        raise ValueProblem(f"is not a valid {what}") from exc


def parse_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("1", "true", 1):
        return True
    if value in ("0", "false", 0, ""):
        return False
    raise ValueProblem("is not a boolean")


def rails_decimal(amount: Decimal) -> str:
    """Ruby's BigDecimal/Float to_s as Rails put it in XML: `1238.0`, `12.34`."""
    text = format(amount.normalize(), "f")
    return text if "." in text else f"{text}.0"


def js_number(amount: Decimal) -> Decimal:
    """The number a JavaScript API would print: no trailing zeros, `3000`, `100.5`."""
    normal = amount.normalize()
    return normal.quantize(Decimal(1)) if normal == normal.to_integral_value() else normal


def iso_z(moment: datetime, *, millis: bool = False) -> str:
    """`2008-02-14T00:00:00Z`, or with milliseconds as JavaScript's toISOString."""
    moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="milliseconds" if millis else "seconds") + "Z"


def iso_offset(moment: datetime) -> str:
    """`2007-12-13T12:12:00+00:00`."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


# A moment kept as `datetime.isoformat()` text in UTC: `...T12:08:38+00:00`, or with
# microseconds `...T12:08:38.123456+00:00`. Such text renders by slicing, unparsed.
_UTC_SUFFIX = "+00:00"
_UTC_LENGTHS = (25, 32)


def iso_z_text(stored: str, *, millis: bool = False) -> str:
    """`iso_z` of a moment kept as its ISO text (`datetime.isoformat()`)."""
    size = len(stored)
    if size not in _UTC_LENGTHS or not stored.endswith(_UTC_SUFFIX):
        return iso_z(datetime.fromisoformat(stored), millis=millis)
    if not millis:
        return stored[:19] + "Z"
    return stored[:19] + (stored[19:23] if size == 32 else ".000") + "Z"


def iso_offset_text(stored: str) -> str:
    """`iso_offset` of a moment kept as its ISO text (`datetime.isoformat()`)."""
    if len(stored) not in _UTC_LENGTHS or not stored.endswith(_UTC_SUFFIX):
        return iso_offset(datetime.fromisoformat(stored))
    return stored[:19] + _UTC_SUFFIX
