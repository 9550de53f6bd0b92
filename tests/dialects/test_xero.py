"""The Xero codec: the fact sheet's samples, Microsoft JSON dates, UUID ids and Xero's errors."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from dialects import DIALECTS, Format, _json
from dialects.base import Removal
from dialects.errors import (
    BadRequest,
    Forbidden,
    NotAuthenticated,
    NotFound,
    NotPayable,
    NotSupported,
    Overpayment,
    TooManyRequests,
    ValidationFailed,
)
from dialects.model import Page, Payment
from dialects.xero import Xero, ms_date, parse_moment

from .conftest import WRITTEN


def _xero() -> Xero:
    dialect = DIALECTS["xero"]
    assert isinstance(dialect, Xero)
    return dialect


xero = _xero()


def removal(fmt: Format) -> Removal:
    """Xero's removal in `fmt` (Op.REMOVE)."""
    found = xero.codecs[fmt].removal
    assert found is not None
    return found


# --- xero-payments.md section 4: a JSON answer (ids made canonical: see below) --------

JSON_ANSWER = b"""{"Id":"83b5715a-6a77-4c16-b5b8-2da08b5fde44","Status":"OK","ProviderName":"My App",
 "DateTimeUTC":"\\/Date(1552432238716)\\/",
 "Payments":[{"PaymentID":"00000000-0000-0000-0000-00000000002a","Date":"\\/Date(1552348800000+0000)\\/",
   "BankAmount":1.00,"Amount":1.00,"CurrencyRate":1.000000,"PaymentType":"ACCRECPAYMENT","Status":"AUTHORISED",
   "UpdatedDateUTC":"\\/Date(1552432238623+0000)\\/","HasAccount":true,"IsReconciled":false,
   "Account":{"AccountID":"5690f1e8-1d02-4893-90c2-ee1a69eff942","Code":"970"},
   "Invoice":{"Type":"ACCREC","InvoiceID":"00000000-0000-0000-0000-000000000004","InvoiceNumber":"INV-0004",
     "AmountDue":229.00,"AmountPaid":1.00,"Status":"AUTHORISED","CurrencyCode":"NZD"},
   "HasValidationErrors":false}]}"""

# --- section 5: an XML answer, and what pyxero sends ------------------------------------

XML_ANSWER = b"""<Response xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <Id>d7d9c843-63ff-4cf9-96eb-a082a3290bbd</Id><Status>OK</Status><ProviderName>Demo AU</ProviderName>
  <DateTimeUTC>2011-05-31T01:20:55.3700795Z</DateTimeUTC>
  <Payments><Payment>
    <PaymentID>00000000-0000-0000-0000-000000000007</PaymentID><Date>2011-02-24T00:00:00</Date>
    <Amount>148.50</Amount><Reference>Chq 409</Reference><CurrencyRate>1.000000</CurrencyRate>
    <PaymentType>ACCPAYPAYMENT</PaymentType><Status>AUTHORISED</Status>
    <UpdatedDateUTC>2008-09-18T12:10:55.937</UpdatedDateUTC>
    <Account><AccountID>13918178-849a-4823-9a31-57b7eac713d7</AccountID></Account>
    <Invoice><Contact><ContactID>d6a384fb-f46f-41a3-8ac7-b7bc9e0b5efa</ContactID><Name>Melrose Parking</Name></Contact>
      <CurrencyCode>AUD</CurrencyCode><Type>ACCPAY</Type>
      <InvoiceID>00000000-0000-0000-0000-000000000003</InvoiceID><InvoiceNumber>9871</InvoiceNumber></Invoice>
  </Payment></Payments>
</Response>"""

PYXERO_PUT = (
    b"<Payments><Payment><Invoice><InvoiceID>00000000-0000-0000-0000-000000000005</InvoiceID>"
    b"</Invoice><Account><Code>970</Code></Account><Date>2019-03-12T00:00:00</Date>"
    b"<Amount>32.06</Amount><Reference>Ref 1</Reference><IsReconciled>false</IsReconciled>"
    b"</Payment></Payments>"
)

# What xero-python sends for create_payment (a bare object, MS date without offset).
SDK_CREATE = b"""{"Invoice": {"InvoiceNumber": "INV-0002"}, "Account": {"Code": "090"},
 "Date": "/Date(1552348800000)/", "Amount": 32.06, "HasAccount": false,
 "HasValidationErrors": false}"""


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=UTC)


def test_json_answer_sample_decodes_every_field() -> None:
    decoded = xero.codecs["json"].decode_payment(JSON_ANSWER)
    assert decoded.payment == Payment(
        id=42,
        invoice_id=4,
        amount=Decimal("1.00"),
        paid_at=utc(2019, 3, 12),
        account_code="970",
        account_id="5690f1e8-1d02-4893-90c2-ee1a69eff942",
        updated_at=datetime.fromtimestamp(1552432238.623, UTC),
    )
    assert decoded.options == {"invoice_number": "INV-0004"}


def test_xml_answer_sample_decodes_every_field() -> None:
    payment = xero.codecs["xml"].decode_payment(XML_ANSWER).payment
    assert payment == Payment(
        id=7,
        invoice_id=3,
        amount=Decimal("148.50"),
        paid_at=utc(2011, 2, 24),
        notes="Chq 409",
        account_id="13918178-849a-4823-9a31-57b7eac713d7",
        updated_at=datetime(2008, 9, 18, 12, 10, 55, 937000, tzinfo=UTC),
    )


@pytest.mark.parametrize(("body", "fmt"), [(JSON_ANSWER, "json"), (XML_ANSWER, "xml")])
@pytest.mark.parametrize("into", ["json", "xml"])
def test_answer_samples_round_trip_through_both_formats(
    body: bytes, fmt: Format, into: Format
) -> None:
    payment = xero.codecs[fmt].decode_payment(body).payment
    assert (
        xero.codecs[into].decode_payment(xero.codecs[into].encode_payment(payment)).payment
        == payment
    )


def test_pyxero_put_body_is_a_list_of_one_payment() -> None:
    [decoded] = xero.codecs["xml"].decode_list(PYXERO_PUT)
    assert decoded.payment == Payment(
        invoice_id=5,
        amount=Decimal("32.06"),
        paid_at=utc(2019, 3, 12),
        notes="Ref 1",
        account_code="970",
    )
    assert decoded.provided == {"invoice_id", "amount", "paid_at", "notes", "account_code"}


def test_sdk_create_references_the_invoice_by_number_with_a_microsoft_date() -> None:
    decoded = xero.codecs["json"].decode_payment(SDK_CREATE)
    assert decoded.payment.invoice_id is None
    assert decoded.options == {"invoice_number": "INV-0002"}
    assert decoded.payment.paid_at == utc(2019, 3, 12)
    assert decoded.payment.account_code == "090"


@pytest.mark.parametrize(
    ("body", "fmt"),
    [
        (b'{"Status": "DELETED"}', "json"),
        (b'{"Payments": [{"Status": "DELETED"}]}', "json"),
        (b"<Payment><Status>DELETED</Status></Payment>", "xml"),
        (b"<Payments><Payment><Status>DELETED</Status></Payment></Payments>", "xml"),
    ],
)
def test_delete_body_is_read_bare_or_wrapped(body: bytes, fmt: Format) -> None:
    removal(fmt).read_removal(body)


def test_a_payment_is_never_edited() -> None:
    with pytest.raises(ValidationFailed, match="only deleted"):
        removal("json").read_removal(b'{"Amount": 3}')


def test_many_payments_in_the_envelope_keep_their_order() -> None:
    body = b'{"Payments": [{"Amount": 1}, {"Amount": 2.5}, {"Amount": "3.10"}]}'
    amounts = [d.payment.amount for d in xero.codecs["json"].decode_list(body)]
    assert amounts == [Decimal("1.00"), Decimal("2.50"), Decimal("3.10")]


def test_one_payment_is_expected_where_one_is_decoded() -> None:
    with pytest.raises(BadRequest, match="Expected one payment, got 2"):
        xero.codecs["json"].decode_payment(b'{"Payments": [{"Amount": 1}, {"Amount": 2}]}')


# --- dates -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "2019-03-12",
        "2019-03-12T00:00:00",
        "/Date(1552348800000)/",
        "/Date(1552348800000+0000)/",
        "/Date(1552348800000+1300)/",
        "2019-03-12T15:30:00",
    ],
)
def test_request_dates_in_every_form_xero_clients_send(text: str) -> None:
    body = _json.dumps({"Amount": 1, "Date": text})
    assert xero.codecs["json"].decode_payment(body).payment.paid_at == utc(2019, 3, 12)


def test_json_answers_write_microsoft_dates_and_xml_answers_iso_without_zone() -> None:
    payment = Payment(
        id=1, amount=Decimal(5), paid_at=utc(2019, 3, 12), updated_at=utc(2019, 11, 14, 18, 10, 38)
    )
    document = _json.loads(xero.codecs["json"].encode_payment(payment))["Payments"][0]
    assert document["Date"] == "/Date(1552348800000+0000)/"
    assert document["UpdatedDateUTC"] == "/Date(1573755038000+0000)/"
    root = etree.fromstring(xero.codecs["xml"].encode_payment(payment))
    assert root.findtext("Payments/Payment/Date") == "2019-03-12T00:00:00"
    assert root.findtext("Payments/Payment/UpdatedDateUTC") == "2019-11-14T18:10:38"


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
def test_microsoft_dates_round_trip_to_the_millisecond(moment: datetime) -> None:
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000, tzinfo=UTC)
    assert parse_moment(ms_date(moment)) == moment


@pytest.mark.parametrize(
    "text", ["/Date(abc)/", "/Date(1552348800000)", "2019-02-30", "12/03/2019"]
)
def test_malformed_dates_are_field_problems(text: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        xero.codecs["json"].decode_payment(_json.dumps({"Amount": 1, "Date": text}))
    assert set(caught.value.fields) == {"paid_at"}


# --- ids -----------------------------------------------------------------------------------


@given(st.integers(min_value=1, max_value=2**63 - 1))
def test_uuid_ids_are_one_bijection_with_canonical_ids(number: int) -> None:
    wire = xero.wire_id(number)
    assert isinstance(wire, str)
    assert uuid.UUID(wire).int == number
    assert xero.parse_id(wire) == number
    assert xero.parse_id(wire.upper()) == number


@pytest.mark.parametrize(
    "text",
    [
        "00000000-0000-0000-0000-000000000000",
        "ffffffff-ffff-ffff-ffff-ffffffffffff",
        "{00000000-0000-0000-0000-000000000001}",
        "00000000000000000000000000000001",
        "17",
        "not-a-uuid",
    ],
)
def test_what_is_not_a_canonical_uuid_is_no_id(text: str) -> None:
    assert xero.parse_id(text) is None


def test_account_id_must_be_a_uuid() -> None:
    with pytest.raises(ValidationFailed) as caught:
        xero.codecs["json"].decode_payment(b'{"Account": {"AccountID": "090"}}')
    assert caught.value.fields == {"account_id": "is not a valid AccountID"}


# --- the envelope ------------------------------------------------------------------------------


def test_json_envelope_carries_id_status_provider_and_time() -> None:
    document = _json.loads(xero.codecs["json"].encode_payments([]))
    assert set(document) == {"Id", "Status", "ProviderName", "DateTimeUTC", "Payments"}
    assert document["Status"] == "OK"
    assert document["DateTimeUTC"] == ms_date(WRITTEN).replace("+0000", "")
    assert document["Payments"] == []
    uuid.UUID(document["Id"])


def test_xml_envelope_is_a_response_with_payments() -> None:
    root = etree.fromstring(xero.codecs["xml"].encode_payments([Payment(id=3, amount=Decimal(1))]))
    assert root.tag == "Response"
    assert root.findtext("Status") == "OK"
    assert root.findtext("DateTimeUTC") == "2026-11-20T09:30:15.123456Z"
    assert root.findtext("Payments/Payment/PaymentID") == "00000000-0000-0000-0000-000000000003"


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_a_paged_list_carries_the_pagination_block(fmt: Format) -> None:
    body = xero.codecs[fmt].encode_page([], Page(page=2, page_size=10, page_count=3, item_count=25))
    if fmt == "json":
        assert _json.loads(body)["pagination"] == {
            "page": 2,
            "pageSize": 10,
            "pageCount": 3,
            "itemCount": 25,
        }
    else:
        block = etree.fromstring(body).find("pagination")
        assert block is not None
        assert [(e.tag, e.text) for e in block] == [
            ("page", "2"),
            ("pageSize", "10"),
            ("pageCount", "3"),
            ("itemCount", "25"),
        ]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_a_deleted_payment_is_echoed_with_status_deleted(fmt: Format) -> None:
    body = removal(fmt).encode_removed(Payment(id=3, amount=Decimal(1)))
    if fmt == "json":
        assert _json.loads(body)["Payments"][0]["Status"] == "DELETED"
    else:
        assert etree.fromstring(body).findtext("Payments/Payment/Status") == "DELETED"


def test_money_is_written_with_cents_and_the_invoice_nested() -> None:
    payment = Payment(id=1, invoice_id=9, amount=Decimal("1238"), account_code="090")
    document = _json.loads(xero.codecs["json"].encode_payment(payment))["Payments"][0]
    assert document["Amount"] == Decimal("1238.00")
    assert document["BankAmount"] == Decimal("1238.00")
    assert document["Invoice"] == {"Type": "ACCREC", "InvoiceID": xero.wire_id(9)}
    assert document["Account"] == {"Code": "090"}
    assert document["HasAccount"] is True


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_request_bodies_are_bare_payments_xero_reads_back(fmt: Format) -> None:
    fields: dict[str, Any] = {
        "invoice_id": 4,
        "amount": Decimal("12.5"),
        "paid_at": utc(2026, 11, 20),
        "notes": "wire",
        "account_code": "090",
    }
    body = xero.codecs[fmt].encode_request(fields)
    decoded = xero.codecs[fmt].decode_payment(body)
    assert decoded.payment == Payment(
        invoice_id=4,
        amount=Decimal("12.50"),
        paid_at=utc(2026, 11, 20),
        notes="wire",
        account_code="090",
    )
    if fmt == "json":
        assert _json.loads(body)["Date"] == "2026-11-20"


# --- errors -----------------------------------------------------------------------------------


def test_overpayment_is_a_validation_exception_with_xeros_words() -> None:
    reply = xero.codecs["json"].encode_error(
        Overpayment(fields={"amount": "exceeds the amount due (5)"})
    )
    assert reply.status == 400
    assert _json.loads(reply.body) == {
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Message": "A validation exception occurred",
        "Elements": [
            {
                "ValidationErrors": [
                    {"Message": "Payment amount exceeds the amount outstanding on this document"}
                ],
                "HasValidationErrors": True,
            }
        ],
    }


def test_validation_exception_in_xml_is_an_api_exception() -> None:
    reply = xero.codecs["xml"].encode_error(NotPayable())
    assert reply.status == 400
    root = etree.fromstring(reply.body)
    assert root.tag == "ApiException"
    assert root.findtext("ErrorNumber") == "10"
    assert root.findtext("Type") == "ValidationException"
    element = root.find("Elements/DataContractBase")
    assert element is not None
    assert element.get("{http://www.w3.org/2001/XMLSchema-instance}type") == "Payment"
    assert element.findtext("ValidationErrors/ValidationError/Message") == (
        "Payments can only be made against Authorised documents"
    )


def test_field_problems_are_named_by_their_xero_path() -> None:
    error = ValidationFailed(fields={"amount": "can't be blank", "account_code": "is unknown"})
    assert xero.messages(error) == ["Amount can't be blank", "Account.Code is unknown"]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_not_found_is_plain_text_whatever_was_asked(fmt: Format) -> None:
    reply = xero.codecs[fmt].encode_error(NotFound("Payment not found"))
    assert reply.status == 404
    assert reply.body == b"The resource you're looking for cannot be found"
    assert reply.headers["Content-Type"] == "text/html; charset=utf-8"


@pytest.mark.parametrize(
    ("error", "status", "title"),
    [
        (NotAuthenticated("AuthenticationUnsuccessful"), 401, "Unauthorized"),
        (Forbidden("AuthenticationUnsuccessful"), 403, "Forbidden"),
    ],
)
def test_401_and_403_are_xero_problem_documents(error: Any, status: int, title: str) -> None:
    reply = xero.codecs["xml"].encode_error(error)
    assert reply.status == status
    document = _json.loads(reply.body)
    assert {k: v for k, v in document.items() if k != "Instance"} == {
        "Type": None,
        "Title": title,
        "Status": status,
        "Detail": "AuthenticationUnsuccessful",
        "Extensions": {},
    }
    uuid.UUID(document["Instance"])


def test_rate_limit_names_the_problem_and_when_to_retry() -> None:
    reply = xero.codecs["json"].encode_error(TooManyRequests(retry_after=7))
    assert reply.status == 429
    assert reply.headers["Retry-After"] == "7"
    assert reply.headers["X-Rate-Limit-Problem"] == "minute"


def test_malformed_body_and_missing_method_use_xeros_exception_types() -> None:
    bad = _json.loads(xero.codecs["json"].encode_error(BadRequest("Malformed JSON")).body)
    assert (bad["ErrorNumber"], bad["Type"], bad["Message"]) == (
        11,
        "PostDataInvalidException",
        "Malformed JSON",
    )
    root = etree.fromstring(xero.codecs["xml"].encode_error(NotSupported()).body)
    assert (root.findtext("ErrorNumber"), root.findtext("Type")) == (
        "20",
        "ApiMethodNotImplementedException",
    )


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_error_details_read_back_what_the_codec_wrote(fmt: Format) -> None:
    reply = xero.codecs[fmt].encode_error(Overpayment())
    message, fields = xero.codecs[fmt].error_details(reply.body)
    assert message == "Payment amount exceeds the amount outstanding on this document"
    assert fields == {"Amount": "exceeds the amount outstanding"}


# --- where on any element, If-Modified-Since ------------------------------------------

_OPS = ["==", "!=", ">", ">=", "<", "<="]
_COMPARED = {"==": Decimal.__eq__, "!=": Decimal.__ne__, ">": Decimal.__gt__,
             ">=": Decimal.__ge__, "<": Decimal.__lt__, "<=": Decimal.__le__}  # fmt: skip
_CENTS = st.integers(min_value=1, max_value=10**9).map(lambda n: Decimal(n).scaleb(-2))


@given(
    amount=_CENTS,
    literal=_CENTS,
    op=st.sampled_from(_OPS),
    field=st.sampled_from(["Amount", "BankAmount"]),
)
def test_where_compares_amounts_as_numbers(
    amount: Decimal, literal: Decimal, op: str, field: str
) -> None:
    query = xero.search.read_query({"where": f"{field}{op}{literal}"})
    assert query.where is not None
    assert query.where(Payment(amount=amount)) is _COMPARED[op](amount, literal)


@given(notes=st.text(alphabet="abc 7", max_size=8), wanted=st.text(alphabet="abc 7", max_size=3))
def test_where_tests_text_as_xero_does(notes: str, wanted: str) -> None:
    payment = Payment(notes=notes)
    for method, expected in (("Contains", wanted in notes), ("StartsWith", notes.startswith(wanted)),
                             ("EndsWith", notes.endswith(wanted)), ("==", notes == wanted)):  # fmt: skip
        clause = f'Reference=="{wanted}"' if method == "==" else f'Reference.{method}("{wanted}")'
        query = xero.search.read_query({"where": clause})
        assert query.where is not None and query.where(payment) is expected


def test_where_reads_constants_flags_and_status() -> None:
    live = Payment(amount=Decimal(1), account_code="090")
    deleted = live.model_copy(update={"deleted_at": datetime(2026, 1, 1, tzinfo=UTC)})
    cases = {'PaymentType=="ACCRECPAYMENT"': (True, True), 'Status=="DELETED"': (False, True),
             'Status!="DELETED"': (True, False), "HasAccount==true": (True, True),
             "IsReconciled==true": (False, False), 'Account.Code=="090"': (True, True),
             'Invoice.Type=="ACCREC"': (True, True)}  # fmt: skip
    for clause, expected in cases.items():
        where = xero.search.read_query({"where": clause}).where
        assert where is not None and (where(live), where(deleted)) == expected, clause


@pytest.mark.parametrize(
    "where",
    ['Colour=="red"', 'Amount>"x"', "HasAccount>true", "Amount.Contains(\"1\")",
     'Reference==5', 'Invoice.InvoiceNumber!="A"', 'Amount==1 OR Amount==2'],
)  # fmt: skip
def test_where_refuses_what_it_cannot_compare(where: str) -> None:
    with pytest.raises(BadRequest):
        xero.search.read_query({"where": where})


def test_invoice_numbers_are_selected_by_the_store() -> None:
    query = xero.search.read_query(
        {"where": 'Invoice.InvoiceNumber=="A" OR Invoice.InvoiceNumber=="B"'}
    )
    assert query.invoice_numbers == ("A", "B") and query.deleted


@pytest.mark.parametrize(
    "header",
    ["Thu, 12 Nov 2009 10:30:00 GMT", "2009-11-12T10:30:00", "2009-11-12T02:30:00-08:00",
     "2009-11-12T10:30:00Z"],
)  # fmt: skip
def test_if_modified_since_reads_the_forms_xeros_clients_send(header: str) -> None:
    query = xero.search.read_search({}, {"If-Modified-Since": header})
    assert query.modified_since == datetime(2009, 11, 12, 10, 30, tzinfo=UTC)
    assert xero.search.read_search({}, {}).modified_since is None
