"""Strict wire values: money is exact or refused, JSON and XML parsers refuse what is hostile."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from dialects import DIALECTS, _json, _values, _xml
from dialects.errors import BadRequest, ValidationFailed

harvest = DIALECTS["harvest"]
fastbill = DIALECTS["fastbill"]
invoiless = DIALECTS["invoiless"]

# --- money ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "amount"),
    [
        ("12.34", Decimal("12.34")),
        (Decimal("100.50"), Decimal("100.50")),
        (3000, Decimal("3000.00")),
        ("1238.0", Decimal("1238.00")),
        ("5.000", Decimal("5.00")),
        ("99999999999999", Decimal("99999999999999.00")),
        ("123456789012.34", Decimal("123456789012.34")),
    ],
)
def test_parse_amount_takes_plain_decimals_exactly(wire: object, amount: Decimal) -> None:
    parsed = _values.parse_amount(wire)
    assert parsed == amount
    assert str(parsed) == str(amount)


@pytest.mark.parametrize(
    "wire",
    [
        Decimal("NaN"),
        Decimal("sNaN"),
        Decimal("Infinity"),
        Decimal("-Infinity"),
        "NaN",
        "Infinity",
        "1e3",
        "1E3",
        "1_000",
        " 5.00 ",
        "+5",
        "5.",
        ".5",
        "05",
        "",
        "5.001",
        Decimal("5.001"),
        "123456789012345",
        "1234567890123.45",
        10**15,
        True,
        False,
        None,
        12.34,
        _values.BadNumber("1e3"),
    ],
    ids=repr,
)
def test_parse_amount_refuses_anything_not_exact(wire: object) -> None:
    with pytest.raises(_values.ValueProblem):
        _values.parse_amount(wire)


def test_parse_amount_names_the_problem() -> None:
    with pytest.raises(_values.ValueProblem, match="at most 2 decimal places"):
        _values.parse_amount("5.001")
    with pytest.raises(_values.ValueProblem, match="at most 14 digits"):
        _values.parse_amount("123456789012345")


# --- JSON -------------------------------------------------------------------------


def test_json_keeps_a_long_decimal_literal_exact() -> None:
    document = _json.loads(b'{"amount": 1.0000000000000001}')
    assert document == {"amount": Decimal("1.0000000000000001")}
    with pytest.raises(_values.ValueProblem):
        _values.parse_amount(document["amount"])


def test_json_amount_with_a_long_fraction_is_a_validation_error_not_a_rounding() -> None:
    body = b'{"amount": 1.0000000000000001, "method": "Cash"}'
    with pytest.raises(ValidationFailed) as caught:
        invoiless.codecs["json"].decode_payment(body)
    assert caught.value.fields == {"amount": "must have at most 2 decimal places"}


def test_json_exponent_literal_is_kept_as_text_and_refused_as_an_amount() -> None:
    document = _json.loads(b'{"amount": 1e3}')
    assert isinstance(document["amount"], _values.BadNumber)
    with pytest.raises(_values.ValueProblem):
        _values.parse_amount(document["amount"])
    with pytest.raises(ValidationFailed) as caught:
        invoiless.codecs["json"].decode_payment(b'{"amount": 1e3, "method": "Cash"}')
    assert set(caught.value.fields) == {"amount"}


@pytest.mark.parametrize(
    "body", [b'{"amount": NaN}', b'{"amount": Infinity}', b'{"amount": -Infinity}']
)
def test_json_refuses_non_finite_literals(body: bytes) -> None:
    with pytest.raises(BadRequest, match="is not valid JSON"):
        _json.loads(body)


def test_json_refuses_duplicate_keys_that_disagree() -> None:
    with pytest.raises(BadRequest, match="Duplicate key 'amount'"):
        _json.loads(b'{"amount": 5, "amount": 500}')


def test_json_accepts_duplicate_keys_that_agree() -> None:
    assert _json.loads(b'{"amount": 5, "amount": 5}') == {"amount": 5}


@pytest.mark.parametrize(
    "body",
    [
        b'{"notes": "caf\xe9"}',
        '{"notes": "x"}'.encode("utf-16"),
        b"\xff\xfe{}",
    ],
)
def test_json_refuses_bodies_that_are_not_utf8(body: bytes) -> None:
    with pytest.raises(BadRequest, match="UTF-8"):
        _json.loads(body)


def test_json_accepts_nesting_to_32_levels() -> None:
    assert _json.loads(b"[" * 32 + b"]" * 32) is not None


@pytest.mark.parametrize("levels", [33, 100_000])
def test_json_refuses_nesting_deeper_than_32(levels: int) -> None:
    with pytest.raises(BadRequest, match="nested too deeply"):
        _json.loads(b"[" * levels + b"]" * levels)


@pytest.mark.parametrize("inner", [b"1", b'"a"', b"{}", b"[]"])
def test_json_counts_what_the_deepest_array_holds_as_a_level(inner: bytes) -> None:
    assert _json.loads(b"[" * 31 + inner + b"]" * 31) is not None
    with pytest.raises(BadRequest, match="nested too deeply"):
        _json.loads(b"[" * 32 + inner + b"]" * 32)


def test_json_refuses_malformed_bodies_with_a_position() -> None:
    with pytest.raises(BadRequest, match="Malformed JSON: .* at line 1 column"):
        _json.loads(b'{"amount": }')


def test_json_encodes_decimals_with_their_exact_digits() -> None:
    assert _json.dumps({"a": Decimal("100.50"), "b": Decimal("3000")}) == b'{"a":100.50,"b":3000}'


# --- XML --------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<payment><notes>&lol3;</notes></payment>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE payment [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<payment><notes>&xxe;</notes></payment>"""

XINCLUDE = b"""<payment xmlns:xi="http://www.w3.org/2001/XInclude">
  <xi:include href="file:///etc/passwd" parse="text"/>
</payment>"""


@pytest.mark.parametrize(
    "body",
    [
        b'<?xml version="1.0"?>\n<!DOCTYPE payment>\n<payment/>',
        b'<!DOCTYPE payment SYSTEM "http://example.com/payment.dtd"><payment/>',
        BILLION_LAUGHS,
        EXTERNAL_ENTITY,
    ],
    ids=["doctype", "external-dtd", "billion-laughs", "external-entity"],
)
def test_xml_refuses_doctype_and_entity_declarations(body: bytes) -> None:
    with pytest.raises(BadRequest, match="DOCTYPE or entity declarations"):
        _xml.parse(body)


def test_xml_refuses_an_undeclared_entity_reference() -> None:
    with pytest.raises(BadRequest, match="Malformed XML"):
        _xml.parse(b"<payment><notes>&xxe;</notes></payment>")


def test_xml_refuses_xinclude() -> None:
    with pytest.raises(BadRequest, match="XInclude"):
        _xml.parse(XINCLUDE)


def test_xml_accepts_nesting_to_32_levels() -> None:
    assert _xml.parse(b"<a>" * 32 + b"</a>" * 32).tag == "a"


@pytest.mark.parametrize("levels", [33, 5_000])
def test_xml_refuses_nesting_deeper_than_32(levels: int) -> None:
    with pytest.raises(BadRequest):
        _xml.parse(b"<a>" * levels + b"</a>" * levels)


@pytest.mark.parametrize(
    "body",
    [
        '<?xml version="1.0" encoding="UTF-16"?><payment/>'.encode("utf-16"),
        '<?xml version="1.0" encoding="UTF-16"?><payment/>'.encode("utf-16-le"),
        '<?xml version="1.0" encoding="UTF-16"?><payment/>'.encode("utf-16-be"),
        b'<?xml version="1.0" encoding="UTF-16"?><payment/>',
        b'<?xml version="1.0" encoding="ISO-8859-1"?><payment><notes>\xe9</notes></payment>',
    ],
    ids=["utf16-bom", "utf16-le", "utf16-be", "utf16-declared", "latin1-declared"],
)
def test_xml_refuses_anything_but_utf8(body: bytes) -> None:
    with pytest.raises(BadRequest, match="UTF-8"):
        _xml.parse(body)


def test_xml_takes_utf8_with_or_without_declaration() -> None:
    declared = '<?xml version="1.0" encoding="UTF-8"?><payment><notes>é</notes></payment>'
    assert _xml.record(_xml.parse(declared.encode())) == {"notes": "é"}
    assert _xml.record(_xml.parse("<payment><notes>é</notes></payment>".encode())) == {"notes": "é"}


def test_xml_refuses_malformed_bodies() -> None:
    with pytest.raises(BadRequest, match="Malformed XML"):
        _xml.parse(b"<payment><amount>5</payment>")


def test_xml_record_refuses_a_field_given_twice_dasherized_and_underscored() -> None:
    body = b"<payment><paid_at>2008-02-14</paid_at><paid-at>2008-02-15</paid-at></payment>"
    with pytest.raises(BadRequest, match="appears twice"):
        harvest.codecs["xml"].decode_payment(body)


def test_xml_record_refuses_nested_elements_in_a_field() -> None:
    with pytest.raises(BadRequest, match="must hold a value"):
        harvest.codecs["xml"].decode_payment(
            b"<payment><amount><value>5</value></amount></payment>"
        )


def test_xml_payment_of_another_dialect_is_refused_by_root_name() -> None:
    with pytest.raises(BadRequest, match="Expected a <invoice-payment> document"):
        fastbill.codecs["xml"].decode_payment(b"<payment><amount>5</amount></payment>")


# --- dates and times ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "moment"),
    [
        ("2008-02-14T00:00:00Z", datetime(2008, 2, 14, tzinfo=UTC)),
        ("2008-02-14 00:00:00 +01:00", datetime(2008, 2, 13, 23, tzinfo=UTC)),
        ("2008-02-14T00:00:00+0100", datetime(2008, 2, 13, 23, tzinfo=UTC)),
        ("2008-02-14T00:00:00 UTC", datetime(2008, 2, 14, tzinfo=UTC)),
        ("2008-02-14T00:00:00", datetime(2008, 2, 14, tzinfo=UTC)),
        ("2024-08-18T12:08:38.000Z", datetime(2024, 8, 18, 12, 8, 38, tzinfo=UTC)),
        ("2024-08-18T12:08:38.123Z", datetime(2024, 8, 18, 12, 8, 38, 123000, tzinfo=UTC)),
        ("2007-12-13T12:12:00+01:00", datetime(2007, 12, 13, 11, 12, tzinfo=UTC)),
        ("2008-02-14", datetime(2008, 2, 14, tzinfo=UTC)),
    ],
)
def test_parse_datetime_accepts_rails_and_iso_forms_in_utc(wire: str, moment: datetime) -> None:
    parsed = _values.parse_datetime(wire)
    assert parsed == moment
    assert parsed.utcoffset() is not None
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "wire", ["2008-02-30", "2008-02-14T25:00:00Z", "14/02/2008", "2008-2-14", "", "yesterday"]
)
def test_parse_datetime_refuses_what_is_no_moment(wire: str) -> None:
    with pytest.raises(_values.ValueProblem):
        _values.parse_datetime(wire)


def test_parse_date_takes_the_utc_date_of_a_datetime() -> None:
    assert _values.parse_date("2009-11-04") == date(2009, 11, 4)
    assert _values.parse_date("2009-11-04T00:30:00+01:00") == date(2009, 11, 3)


def test_rails_datetime_type_spelled_datetime_camel_case_decodes() -> None:
    body = b"""<payment>
  <paid-at type="dateTime">2008-02-14T00:00:00Z</paid-at>
  <amount type="decimal">52000.0</amount>
</payment>"""
    payment = harvest.codecs["xml"].decode_payment(body).payment
    assert payment.paid_at == datetime(2008, 2, 14, tzinfo=UTC)


def test_rails_datetime_with_a_space_and_offset_decodes_to_utc() -> None:
    body = b"<payment><paid-at>2008-02-14 00:00:00 +01:00</paid-at><amount>5</amount></payment>"
    payment = harvest.codecs["xml"].decode_payment(body).payment
    assert payment.paid_at == datetime(2008, 2, 13, 23, tzinfo=UTC)


def test_rails_date_alone_decodes_as_midnight_utc() -> None:
    body = b"<payment><paid-at>2008-02-14</paid-at><amount>5</amount></payment>"
    assert harvest.codecs["xml"].decode_payment(body).payment.paid_at == datetime(
        2008, 2, 14, tzinfo=UTC
    )


def test_datetimes_are_written_with_four_digit_years() -> None:
    early = datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert _values.iso_z(early) == "0999-01-02T03:04:05Z"
    assert _values.iso_z(early, millis=True) == "0999-01-02T03:04:05.000Z"
    assert _values.parse_datetime(_values.iso_z(early)) == early


# --- Rails keys and nil ------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"<payment><paid-at>2008-02-14T00:00:00Z</paid-at><amount>5</amount></payment>",
        b"<payment><paid_at>2008-02-14T00:00:00Z</paid_at><amount>5</amount></payment>",
    ],
    ids=["dasherized", "underscored"],
)
def test_rails_xml_keys_dasherized_or_underscored_both_decode(body: bytes) -> None:
    decoded = harvest.codecs["xml"].decode_payment(body)
    assert decoded.payment.paid_at == datetime(2008, 2, 14, tzinfo=UTC)
    assert decoded.provided == {"amount", "paid_at"}


@pytest.mark.parametrize(
    "body",
    [
        b'{"payment": {"paid-at": "2008-02-14T00:00:00Z", "amount": "5.0"}}',
        b'{"payment": {"paid_at": "2008-02-14T00:00:00Z", "amount": "5.0"}}',
        b'{"paid_at": "2008-02-14T00:00:00Z", "amount": "5.0"}',
    ],
    ids=["dasherized", "underscored", "unwrapped"],
)
def test_rails_json_keys_dasherized_or_underscored_both_decode(body: bytes) -> None:
    decoded = harvest.codecs["json"].decode_payment(body)
    assert decoded.payment.paid_at == datetime(2008, 2, 14, tzinfo=UTC)
    assert decoded.payment.amount == Decimal("5.00")


def test_fastbill_underscored_keys_also_decode_dasherized() -> None:
    body = b"<invoice-payment><invoice-id>1</invoice-id><amount>1</amount></invoice-payment>"
    assert fastbill.codecs["xml"].decode_payment(body).payment.invoice_id == 1


def test_nil_elements_read_as_absent_values() -> None:
    body = b"""<payment>
  <paid-at type="datetime">2008-02-14T00:00:00Z</paid-at>
  <amount type="decimal">5.0</amount>
  <notes nil="true"/>
  <id type="integer" nil="true"/>
  <created-at type="datetime" nil="true"/>
  <recorded-by nil="true"/>
</payment>"""
    payment = harvest.codecs["xml"].decode_payment(body).payment
    assert payment.notes is None
    assert payment.id is None
    assert payment.created_at is None
    assert payment.recorded_by is None


def test_nil_fastbill_type_reads_as_no_method() -> None:
    body = b'<invoice-payment><amount>1</amount><type nil="true"/></invoice-payment>'
    payment = fastbill.codecs["xml"].decode_payment(body).payment
    assert (payment.method, payment.method_label, payment.origin) == (None, None, None)


@pytest.mark.parametrize("field", ["amount", "paid-at"])
def test_nil_for_a_required_client_field_cannot_be_blank(field: str) -> None:
    body = f'<payment><{field} nil="true"/></payment>'.encode()
    with pytest.raises(ValidationFailed) as caught:
        harvest.codecs["xml"].decode_payment(body)
    assert caught.value.fields == {field.replace("-", "_"): "can't be blank"}


def test_element_without_nil_but_empty_is_empty_text() -> None:
    assert (
        harvest.codecs["xml"].decode_payment(b"<payment><notes></notes></payment>").payment.notes
        == ""
    )


# --- text fields ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "escaped",
    [
        b"\\u0000",
        b"\\u0007",
        b"\\u001b",
        b"\\u007f",
        b"\\ud800",
        b"\\udfff",
        b"\\ufffe",
        b"\\uffff",
    ],
)
def test_text_that_utf8_or_xml_cannot_carry_is_refused(escaped: bytes) -> None:
    body = b'{"method": "Cash", "notes": "before ' + escaped + b' after"}'
    with pytest.raises(ValidationFailed) as caught:
        invoiless.codecs["json"].decode_payment(body)
    assert caught.value.fields == {"notes": "must not contain control characters"}


def test_tab_and_line_ends_are_text() -> None:
    body = b'{"method": "Cash", "notes": "a\\tb\\r\\nc\\nd"}'
    assert invoiless.codecs["json"].decode_payment(body).payment.notes == "a\tb\r\nc\nd"


def test_invoiless_notes_are_limited_to_500_characters() -> None:
    accepted = invoiless.codecs["json"].decode_payment(b'{"notes": "' + b"x" * 500 + b'"}')
    assert accepted.payment.notes == "x" * 500
    with pytest.raises(ValidationFailed) as caught:
        invoiless.codecs["json"].decode_payment(b'{"notes": "' + b"x" * 501 + b'"}')
    assert caught.value.fields == {"notes": "is too long (maximum is 500 characters)"}
