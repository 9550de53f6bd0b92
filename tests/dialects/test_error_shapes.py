"""Each dialect renders the one error tree in its own shape, with its own field names."""

from __future__ import annotations

from typing import Any

import pytest

import dialects
from dialects import DIALECTS, Format, _json
from dialects.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    GatewayError,
    InternalError,
    LedgerRefused,
    NotAuthenticated,
    NotFound,
    TooManyRequests,
    UpstreamError,
    UpstreamUnavailable,
    ValidationFailed,
)
from dialects.rails import RailsDialect

from ..registry import json_only, names
from ..registry import rails as rails_family

harvest = DIALECTS["harvest"]
fastbill = DIALECTS["fastbill"]
invoiless = DIALECTS["invoiless"]
urlkey = DIALECTS["urlkey"]

DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
BLANK_AMOUNT = ValidationFailed(fields={"amount": "can't be blank"})
RAILS = [(name, fmt) for name in names(rails_family) for fmt in DIALECTS[name].formats]
# The realm each Rails dialect documents in its Basic challenge, by dialect.
REALMS = {"harvest": "Harvest", "fastbill": "FastBill"}


def rails_errors(*messages: str) -> bytes:
    body = "".join(f"\n  <error>{message}</error>" for message in messages)
    return f"{DECLARATION}<errors>{body}\n</errors>\n".encode()


def rails(name: str) -> RailsDialect:
    dialect = DIALECTS[name]
    assert isinstance(dialect, RailsDialect)
    return dialect


def json_body(body: bytes) -> Any:
    return _json.loads(body)


# --- harvest and fastbill: Rails ----------------------------------------------------


def test_harvest_validation_error_is_rails_422_full_messages_in_xml() -> None:
    reply = harvest.codecs["xml"].encode_error(BLANK_AMOUNT)
    assert reply.status == 422
    assert reply.body == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b"<errors>\n  <error>Amount can't be blank</error>\n</errors>\n"
    )
    assert dict(reply.headers) == {}


def test_harvest_validation_error_in_json_is_an_errors_array() -> None:
    reply = harvest.codecs["json"].encode_error(BLANK_AMOUNT)
    assert reply.status == 422
    assert json_body(reply.body) == {"errors": ["Amount can't be blank"]}


@pytest.mark.parametrize(("name", "fmt"), RAILS)
def test_rails_not_found_is_404_with_an_errors_document(name: str, fmt: Format) -> None:
    reply = DIALECTS[name].codecs[fmt].encode_error(NotFound())
    assert reply.status == 404
    if fmt == "xml":
        assert reply.body == rails_errors("Not found")
    else:
        assert json_body(reply.body) == {"errors": ["Not found"]}


def test_every_rails_dialect_documents_its_realm() -> None:
    """A new Rails dialect is not left out of the challenge test below: it names its realm."""
    assert set(REALMS) == set(names(rails_family))


@pytest.mark.parametrize("name", names(rails_family))
def test_rails_not_authenticated_is_401_with_a_basic_challenge(name: str) -> None:
    realm = REALMS[name]
    reply = DIALECTS[name].codecs["xml"].encode_error(NotAuthenticated())
    assert reply.status == 401
    assert reply.headers["WWW-Authenticate"] == f'Basic realm="{realm}"'
    assert reply.headers["WWW-Authenticate"].startswith("Basic ")
    assert reply.body == rails_errors("Invalid login")


def test_harvest_bad_request_is_400_with_a_hint_header() -> None:
    reply = harvest.codecs["xml"].encode_error(BadRequest("Malformed XML: Premature end of data"))
    assert reply.status == 400
    assert reply.headers["Hint"] == "Malformed XML: Premature end of data"
    assert reply.body == rails_errors("Malformed XML: Premature end of data")


def test_harvest_hint_header_is_one_line_of_at_most_500_characters() -> None:
    reply = harvest.codecs["json"].encode_error(BadRequest("line one\nline two " + "x" * 600))
    assert "\n" not in reply.headers["Hint"]
    assert reply.headers["Hint"].startswith("line one line two x")
    assert len(reply.headers["Hint"]) == 500


def test_harvest_rate_limited_is_503_with_retry_after() -> None:
    reply = harvest.codecs["xml"].encode_error(TooManyRequests(retry_after=30))
    assert reply.status == 503
    assert reply.headers["Retry-After"] == "30"
    assert reply.body == rails_errors("Too many requests")


def test_fastbill_rate_limited_keeps_429_with_retry_after() -> None:
    reply = fastbill.codecs["xml"].encode_error(TooManyRequests(retry_after=30))
    assert (reply.status, reply.headers["Retry-After"]) == (429, "30")


def test_fastbill_validation_error_uses_fastbill_field_names() -> None:
    error = ValidationFailed(
        fields={
            "notes": "is too long (maximum is 4000 characters)",
            "paid_at": "is not a valid date",
        }
    )
    reply = fastbill.codecs["xml"].encode_error(error)
    assert reply.status == 422
    assert reply.body == rails_errors(
        "Comment is too long (maximum is 4000 characters)", "Date is not a valid date"
    )


def test_harvest_validation_error_humanises_dasherized_field_names() -> None:
    reply = harvest.codecs["json"].encode_error(
        ValidationFailed(fields={"paid_at": "can't be blank"})
    )
    assert json_body(reply.body) == {"errors": ["Paid at can't be blank"]}


def test_rails_error_messages_are_xml_escaped() -> None:
    reply = harvest.codecs["xml"].encode_error(BadRequest("Unexpected <payment> & more"))
    assert reply.body == rails_errors("Unexpected &lt;payment&gt; &amp; more")
    assert rails("harvest").codecs["xml"].error_details(reply.body) == (
        "Unexpected <payment> & more",
        {},
    )


@pytest.mark.parametrize(("name", "fmt"), RAILS)
def test_rails_error_documents_decode_back_to_their_field_problems(name: str, fmt: Format) -> None:
    dialect = rails(name)
    reply = dialect.codecs[fmt].encode_error(BLANK_AMOUNT)
    message, fields = dialect.codecs[fmt].error_details(reply.body)
    assert message == "Amount can't be blank"
    assert dialect.canonical_fields(fields) == {"amount": "can't be blank"}


@pytest.mark.parametrize("name", names(json_only))
def test_json_error_documents_decode_back_to_canonical_fields(name: str) -> None:
    dialect = dialects.get(name)
    error = ValidationFailed(fields={"paid_at": "is not a valid date"})
    message, fields = dialect.codecs["json"].error_details(
        dialect.codecs["json"].encode_error(error).body
    )
    assert message == "Validation failed"
    assert dialect.canonical_fields(fields) == {"paid_at": "is not a valid date"}


# --- invoiless ----------------------------------------------------------------------


def test_invoiless_validation_error_is_400_with_code_message_and_fields() -> None:
    reply = invoiless.codecs["json"].encode_error(BLANK_AMOUNT)
    assert reply.status == 400
    assert json_body(reply.body) == {
        "error": {
            "code": "validation",
            "message": "Validation failed",
            "fields": {"amount": "can't be blank"},
        }
    }


def test_invoiless_field_names_are_its_wire_names() -> None:
    error = ValidationFailed(fields={"paid_at": "is not a valid date", "notify_customer": "bad"})
    body = json_body(invoiless.codecs["json"].encode_error(error).body)
    assert body["error"]["fields"] == {"paidAt": "is not a valid date", "sendNotification": "bad"}


def test_invoiless_not_found_is_404_without_fields() -> None:
    reply = invoiless.codecs["json"].encode_error(NotFound())
    assert reply.status == 404
    assert json_body(reply.body) == {"error": {"code": "not_found", "message": "Not found"}}


def test_invoiless_not_authenticated_is_401_and_forbidden_403() -> None:
    unauthenticated = invoiless.codecs["json"].encode_error(NotAuthenticated())
    assert unauthenticated.status == 401
    assert json_body(unauthenticated.body) == {
        "error": {"code": "unauthenticated", "message": "Invalid login"}
    }
    assert invoiless.codecs["json"].encode_error(Forbidden()).status == 403


def test_invoiless_rate_limited_is_429_with_retry_after() -> None:
    reply = invoiless.codecs["json"].encode_error(TooManyRequests(retry_after=30))
    assert (reply.status, reply.headers["Retry-After"]) == (429, "30")


# --- urlkey: Feathers.js ------------------------------------------------------------


def test_urlkey_validation_error_is_a_feathers_bad_request() -> None:
    reply = urlkey.codecs["json"].encode_error(BLANK_AMOUNT)
    assert reply.status == 400
    assert json_body(reply.body) == {
        "name": "BadRequest",
        "message": "Validation failed",
        "code": 400,
        "className": "bad-request",
        "data": {"message": "Validation failed"},
        "errors": {"amount": "can't be blank"},
    }


def test_urlkey_field_names_are_its_wire_names() -> None:
    error = ValidationFailed(
        fields={"paid_at": "can't be blank", "id": "is not a valid id", "fee": "bad"}
    )
    body = json_body(urlkey.codecs["json"].encode_error(error).body)
    assert body["errors"] == {
        "paymentDate": "can't be blank",
        "_id": "is not a valid id",
        "transactionCharge": "bad",
    }


def test_urlkey_not_found_and_not_authenticated_are_feathers_errors() -> None:
    assert json_body(urlkey.codecs["json"].encode_error(NotFound()).body) == {
        "name": "NotFound",
        "message": "Not found",
        "code": 404,
        "className": "not-found",
        "data": {"message": "Not found"},
        "errors": {},
    }
    reply = urlkey.codecs["json"].encode_error(NotAuthenticated())
    assert reply.status == 401
    assert json_body(reply.body)["name"] == "NotAuthenticated"
    assert json_body(reply.body)["className"] == "not-authenticated"


@pytest.mark.parametrize(
    ("error", "status", "name", "class_name"),
    [
        (BadRequest(), 400, "BadRequest", "bad-request"),
        (NotAuthenticated(), 401, "NotAuthenticated", "not-authenticated"),
        (Forbidden(), 403, "Forbidden", "forbidden"),
        (NotFound(), 404, "NotFound", "not-found"),
        (Conflict(), 409, "Conflict", "conflict"),
        (LedgerRefused(), 422, "Unprocessable", "unprocessable"),
        (TooManyRequests(retry_after=30), 429, "TooManyRequests", "too-many-requests"),
        (InternalError(), 500, "GeneralError", "general-error"),
        (UpstreamError(), 502, "BadGateway", "bad-gateway"),
        (UpstreamUnavailable(), 503, "Unavailable", "unavailable"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_urlkey_feathers_names_follow_the_status(
    error: GatewayError, status: int, name: str, class_name: str
) -> None:
    reply = urlkey.codecs["json"].encode_error(error)
    body = json_body(reply.body)
    assert reply.status == status
    assert (body["name"], body["code"], body["className"]) == (name, status, class_name)
    assert body["message"] == error.message
    assert body["data"] == {"message": error.message}


def test_urlkey_rate_limited_carries_retry_after() -> None:
    assert urlkey.codecs["json"].encode_error(TooManyRequests(retry_after=30)).headers == {
        "Retry-After": "30"
    }


# --- every dialect --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"), [(name, fmt) for name, d in DIALECTS.items() for fmt in d.formats]
)
def test_every_dialect_renders_every_error_kind(name: str, fmt: Format) -> None:
    dialect = DIALECTS[name]
    for error in (BLANK_AMOUNT, NotFound(), NotAuthenticated(), TooManyRequests(retry_after=1)):
        reply = dialect.codecs[fmt].encode_error(error)
        assert 400 <= reply.status < 600
        # A dialect may answer some errors in a type of its own (Xero: plain-text 404,
        # JSON problem documents for 401): the body is then what its Content-Type says.
        declared = reply.headers.get("Content-Type", "")
        shown = next((f for f in ("json", "xml") if f in declared), None) if declared else fmt
        if shown == "json":
            assert isinstance(json_body(reply.body), dict)
        elif shown == "xml":
            assert reply.body.startswith(DECLARATION.encode())
        else:
            assert declared.startswith("text/") and reply.body


# --- the registry -----------------------------------------------------------------------


def test_registry_finds_every_dialect_by_name() -> None:
    assert sorted(DIALECTS) == ["fastbill", "harvest", "invoiless", "quickbooks", "urlkey", "xero"]
    for name, dialect in DIALECTS.items():
        assert dialects.get(name) is dialect
        assert dialect.name == name


def test_unknown_dialect_suggests_the_closest_name() -> None:
    with pytest.raises(dialects.UnknownDialect) as caught:
        dialects.get("harvset")
    assert isinstance(caught.value, KeyError)
    assert "harvest" in caught.value.args[0]
    assert caught.value.args[0] == "unknown dialect 'harvset'; did you mean 'harvest'?"


def test_unknown_dialect_far_from_any_lists_the_known_ones_in_name_order() -> None:
    with pytest.raises(dialects.UnknownDialect) as caught:
        dialects.get("zoho")
    known = ", ".join(sorted(dialects.units()))
    assert caught.value.args[0] == f"unknown dialect 'zoho'; known: {known}"
    assert "harvest, invoiless, quickbooks, urlkey" in known
