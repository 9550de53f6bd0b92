"""The wire protocol of each dialect: statuses, headers, formats, paths and id forms."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from lxml import etree

from dialects import testing

from ..clients import CLIENTS, Reply
from ..conftest import Client
from ..http.wire import (
    DECLARATION,
    call,
    error_messages,
    json_body,
    make_invoice,
    pay,
    payment_id,
    state,
    urlkey_path,
)
from ..registry import names, rails, speaks_xml
from ..support import ADMIN, hexid

XML_TYPE = "application/xml; charset=utf-8"
JSON_TYPE = "application/json; charset=utf-8"
HARVEST_XML = (
    '<payment><paid-at type="datetime">2008-02-14T00:00:00Z</paid-at>'
    '<amount type="decimal">123.5</amount><notes>Finally.</notes></payment>'
)


async def bare(
    client: Client,
    dialect: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """A request that sends no Accept header at all (aiohttp adds `*/*` by default)."""
    all_headers = {**CLIENTS[dialect](client).auth(), **(headers or {})}
    async with client.request(
        method, path, data=body, headers=all_headers, skip_auto_headers=["Accept"]
    ) as response:
        if "Accept" not in all_headers:
            assert "Accept" not in response.request_info.headers
        return Reply(response.status, await response.read(), dict(response.headers))


def fields(element: etree._Element) -> dict[str, tuple[str | None, str | None]]:
    """`{tag: (type attribute, text)}` of a record element; nil elements have text None."""
    return {
        str(child.tag): (child.get("type"), None if child.get("nil") == "true" else child.text)
        for child in element
    }


# --- statuses and Location --------------------------------------------------------------


async def test_harvest_create_answers_201_with_location_and_the_payment(client: Client) -> None:
    invoice = await make_invoice(client)

    reply = await call(
        client,
        "harvest",
        "POST",
        f"/invoices/{invoice}/payments",
        HARVEST_XML.encode(),
        {"Content-Type": "application/xml"},
    )

    assert reply.status == 201, reply.body
    number = payment_id("harvest", reply)
    assert reply.headers["Location"] == f"/invoices/{invoice}/payments/{number}"
    assert reply.headers["Content-Type"] == XML_TYPE
    assert reply.body.startswith(DECLARATION)
    root = reply.xml()
    assert root.tag == "payment"
    got = fields(root)
    created_type, created_at = got.pop("created-at")
    assert created_type == "datetime" and created_at is not None and created_at.endswith("Z")
    assert got == {
        "amount": ("decimal", "123.5"),
        "id": ("integer", str(number)),
        "invoice-id": ("integer", str(invoice)),
        "notes": (None, "Finally."),
        "paid-at": ("datetime", "2008-02-14T00:00:00Z"),
        "recorded-by": (None, "Owner"),
        "recorded-by-email": (None, "acme@example.com"),
    }
    assert await state(client, invoice) == ("876.50", "partial", 1)


async def test_harvest_create_without_paid_at_or_amount_is_422(client: Client) -> None:
    invoice = await make_invoice(client)

    reply = await call(
        client,
        "harvest",
        "POST",
        f"/invoices/{invoice}/payments",
        b"<payment><notes>none</notes></payment>",
        {"Content-Type": "application/xml"},
    )

    assert reply.status == 422
    assert sorted(error_messages(reply)) == ["Amount can't be blank", "Paid at can't be blank"]
    assert await state(client, invoice) == ("1000.00", "open", 0)


async def test_harvest_delete_answers_200_and_the_payment_is_gone(client: Client) -> None:
    invoice = await make_invoice(client)
    number = payment_id("harvest", await pay(client, "harvest", invoice, "10"))

    reply = await call(client, "harvest", "DELETE", f"/invoices/{invoice}/payments/{number}")

    assert (reply.status, reply.body) == (200, b"")
    again = await call(client, "harvest", "GET", f"/invoices/{invoice}/payments/{number}")
    assert again.status == 404
    assert error_messages(again) == ["Payment not found"]
    twice = await call(client, "harvest", "DELETE", f"/invoices/{invoice}/payments/{number}")
    assert twice.status == 404
    assert await state(client, invoice) == ("1000.00", "open", 0)


async def test_invoiless_delete_answers_204_with_no_body(client: Client) -> None:
    invoice = await make_invoice(client)
    number = payment_id("invoiless", await pay(client, "invoiless", invoice, "10"))

    reply = await call(client, "invoiless", "DELETE", f"/v1/payments/{number}")

    assert (reply.status, reply.body) == (204, b"")
    again = await call(client, "invoiless", "GET", f"/v1/payments/{number}")
    assert again.status == 404
    assert again.json() == {"error": {"code": "not_found", "message": "Payment not found"}}


async def test_fastbill_create_answers_201_with_the_payment(client: Client) -> None:
    invoice = await make_invoice(client)
    body = (
        f"<invoice-payment><invoice_id>{invoice}</invoice_id><date>2009-11-03</date>"
        "<amount>12.34</amount><comment>via bank transfer</comment></invoice-payment>"
    )

    reply = await call(
        client,
        "fastbill",
        "POST",
        "/api/invoice-payments",
        body.encode(),
        {"Content-Type": "text/xml"},
    )

    assert reply.status == 201, reply.body
    number = payment_id("fastbill", reply)
    assert reply.headers["Location"] == f"/api/invoice-payments/{number}"
    assert reply.body.startswith(DECLARATION)
    root = reply.xml()
    assert root.tag == "invoice-payment"
    got = fields(root)
    created_type, created = got.pop("created")
    assert created_type == "datetime" and created is not None and created.endswith("+00:00")
    assert got == {
        "id": ("integer", str(number)),
        "invoice_id": ("integer", str(invoice)),
        "date": ("date", "2009-11-03"),
        "amount": ("float", "12.34"),
        "comment": (None, "via bank transfer"),
        "type": (None, None),
    }


async def test_urlkey_create_answers_201_with_the_whole_payment(client: Client) -> None:
    invoice = await make_invoice(client, total="5000.00")
    body = json_body(
        {
            "amount": Decimal("3000"),
            "paymentDate": "2024-08-18T12:08:38.000Z",
            "paymentMethod": "CHEQUE",
            "notes": "Payment for invoice #123",
            "refId": "R-1",
        }
    )

    reply = await call(
        client, "urlkey", "POST", urlkey_path(invoice), body, {"Content-Type": "application/json"}
    )

    assert reply.status == 201, reply.body
    created = reply.json()
    number = created.pop("_id")
    assert len(number) == 24 and int(number, 16) > 0
    assert created == {
        "tds": 0,
        "transactionCharge": 0,
        "amount": 3000,
        "paymentDate": "2024-08-18T12:08:38.000Z",
        "paymentMethod": "CHEQUE",
        "notes": "Payment for invoice #123",
        "refId": "R-1",
        "business": created["business"],
        "payerBusiness": None,
        "isApproved": True,
        "isRemoved": False,
        "appId": "acme-app",
    }
    assert len(created["business"]) == 24


# --- formats: suffixes, Accept, Content-Type ------------------------------------------


async def test_rails_suffixes_select_the_format_on_literal_paths(client: Client) -> None:
    invoice = await make_invoice(client)
    assert invoice == 1
    for _ in range(7):
        assert (await pay(client, "harvest", invoice, "1")).status == 201

    as_json = await call(client, "harvest", "GET", "/invoices/1/payments/5.json")
    assert as_json.status == 200, as_json.body
    assert as_json.headers["Content-Type"] == JSON_TYPE
    payment = as_json.json()
    assert list(payment) == ["payment"]
    assert (payment["payment"]["id"], payment["payment"]["invoice_id"]) == (5, 1)
    assert payment["payment"]["amount"] == "1.0"

    as_xml = await call(
        client,
        "fastbill",
        "GET",
        "/api/invoice-payments/7.xml",
        headers={"Accept": "application/json"},
    )
    assert as_xml.status == 200, as_xml.body
    assert as_xml.headers["Content-Type"] == XML_TYPE
    assert as_xml.body.startswith(DECLARATION)
    assert fields(as_xml.xml())["id"] == ("integer", "7")


@pytest.mark.parametrize(
    ("path", "suffix_format"),
    [
        ("/invoices/{invoice}/payments.json", "json"),
        ("/invoices/{invoice}/payments.xml", "xml"),
        ("/invoices/{invoice}/payments/{payment}.json", "json"),
        ("/invoices/{invoice}/payments/{payment}.xml", "xml"),
        ("/invoices/{invoice}/payment/{payment}.json", "json"),
        ("/invoices/{invoice}/payment/{payment}.xml", "xml"),
        ("/api/invoice-payments.json?invoice_id={invoice}", "json"),
        ("/api/invoice-payments.xml?invoice_id={invoice}", "xml"),
        ("/api/invoice-payments/{payment}.json", "json"),
        ("/api/invoice-payments/{payment}.xml", "xml"),
    ],
)
@pytest.mark.parametrize("accept", [None, "application/json", "application/xml"])
async def test_suffix_wins_over_accept(
    client: Client, path: str, suffix_format: str, accept: str | None
) -> None:
    invoice = await make_invoice(client)
    number = payment_id("harvest", await pay(client, "harvest", invoice, "1.5"))
    dialect = "fastbill" if path.startswith("/api/") else "harvest"
    headers = {"Accept": accept} if accept else {}

    reply = await bare(
        client, dialect, "GET", path.format(invoice=invoice, payment=number), headers=headers
    )

    assert reply.status == 200, reply.body
    if suffix_format == "json":
        assert reply.headers["Content-Type"] == JSON_TYPE
        document = reply.json()
        item = document[0] if isinstance(document, list) else document
        root = "payment" if dialect == "harvest" else "invoice_payment"
        assert item[root]["id"] == number
    else:
        assert reply.headers["Content-Type"] == XML_TYPE
        assert reply.body.startswith(DECLARATION)
        root_element = reply.xml()
        record = root_element[0] if root_element.get("type") == "array" else root_element
        assert fields(record)["id"] == ("integer", str(number))


# The root element each Rails dialect documents for one payment, by dialect.
RAILS_ROOTS = {"harvest": "payment", "fastbill": "invoice-payment"}


def test_every_rails_dialect_documents_its_payment_root() -> None:
    assert set(RAILS_ROOTS) == set(names(rails))


@pytest.mark.parametrize("dialect", names(rails))
async def test_no_accept_answers_xml_and_accept_json_answers_json(
    client: Client, dialect: str
) -> None:
    invoice = await make_invoice(client)
    number = payment_id(dialect, await pay(client, dialect, invoice, "2.5"))
    path = testing.support(dialect).location(invoice, number)
    assert path is not None
    root = RAILS_ROOTS[dialect]

    plain = await bare(client, dialect, "GET", path)
    assert plain.status == 200, plain.body
    assert plain.headers["Content-Type"] == XML_TYPE
    assert plain.body.startswith(DECLARATION)
    assert plain.xml().tag == root

    wildcard = await call(client, dialect, "GET", path, headers={"Accept": "*/*"})
    assert wildcard.headers["Content-Type"] == XML_TYPE

    as_json = await call(client, dialect, "GET", path, headers={"Accept": "application/json"})
    assert as_json.status == 200, as_json.body
    assert as_json.headers["Content-Type"] == JSON_TYPE
    document = as_json.json()
    key = root.replace("-", "_")
    assert list(document) == [key]
    assert document[key]["id"] == number
    assert document[key]["invoice_id"] == invoice


async def test_harvest_json_payment_has_the_rails_root_and_keys(client: Client) -> None:
    invoice = await make_invoice(client, total="5000.00")
    number = payment_id("harvest", await pay(client, "harvest", invoice, "1238"))

    reply = await call(
        client,
        "harvest",
        "GET",
        f"/invoices/{invoice}/payments/{number}",
        headers={"Accept": "application/json"},
    )

    document = reply.json()
    created = document["payment"].pop("created_at")
    assert isinstance(created, str) and created.endswith("Z")
    assert document == {
        "payment": {
            "amount": "1238.0",
            "id": number,
            "invoice_id": invoice,
            "notes": None,
            "paid_at": "2026-11-20T00:00:00Z",
            "recorded_by": "Owner",
            "recorded_by_email": "acme@example.com",
        }
    }


async def test_harvest_list_answers_json_array_of_rooted_payments(client: Client) -> None:
    invoice = await make_invoice(client)
    first = payment_id("harvest", await pay(client, "harvest", invoice, "1"))
    second = payment_id("invoiless", await pay(client, "invoiless", invoice, "2"))

    reply = await call(
        client,
        "harvest",
        "GET",
        f"/invoices/{invoice}/payments",
        headers={"Accept": "application/json"},
    )

    assert reply.status == 200
    assert [(p["payment"]["id"], p["payment"]["amount"]) for p in reply.json()] == [
        (first, "1.0"),
        (second, "2.0"),
    ]


def xml_create(dialect: str, invoice: int) -> tuple[str, str]:
    """(path, body) of a 123.5 create: a documented sample where there is one, else the
    dialect's own test support's create, so every XML dialect is checked."""
    if dialect == "harvest":
        return f"/invoices/{invoice}/payments", HARVEST_XML
    if dialect == "fastbill":
        return "/api/invoice-payments", (
            f"<invoice-payment><invoice_id>{invoice}</invoice_id>"
            "<amount>123.5</amount></invoice-payment>"
        )
    request = testing.support(dialect).create("acme", invoice, "123.5")
    return request.path, (request.body or b"").decode()


@pytest.mark.parametrize("content_type", ["application/xml", "text/xml", "text/xml; charset=utf-8"])
@pytest.mark.parametrize("dialect", names(speaks_xml))
async def test_xml_bodies_are_accepted_as_application_xml_and_text_xml(
    client: Client, dialect: str, content_type: str
) -> None:
    invoice = await make_invoice(client)
    path, body = xml_create(dialect, invoice)

    reply = await call(client, dialect, "POST", path, body.encode(), {"Content-Type": content_type})

    assert reply.status == testing.support(dialect).create_status, reply.body
    assert await state(client, invoice) == ("876.50", "partial", 1)


@pytest.mark.parametrize("rooted", [True, False])
async def test_harvest_accepts_json_bodies_with_or_without_the_root(
    client: Client, rooted: bool
) -> None:
    invoice = await make_invoice(client)
    payment = {"paid-at": "2008-02-14T00:00:00Z", "amount": "52.5", "notes": "json"}
    body = json.dumps({"payment": payment} if rooted else payment).encode()

    reply = await call(
        client,
        "harvest",
        "POST",
        f"/invoices/{invoice}/payments",
        body,
        {"Content-Type": "application/json", "Accept": "application/json"},
    )

    assert reply.status == 201, reply.body
    created = reply.json()["payment"]
    assert (created["amount"], created["notes"], created["paid_at"]) == (
        "52.5",
        "json",
        "2008-02-14T00:00:00Z",
    )
    assert await state(client, invoice) == ("947.50", "partial", 1)


async def test_harvest_json_body_with_a_json_number_amount(client: Client) -> None:
    invoice = await make_invoice(client)
    body = b'{"payment": {"paid_at": "2008-02-14", "amount": 52.25}}'

    reply = await call(
        client,
        "harvest",
        "POST",
        f"/invoices/{invoice}/payments.json",
        body,
        {"Content-Type": "application/json"},
    )

    assert reply.status == 201, reply.body
    assert reply.headers["Content-Type"] == JSON_TYPE
    assert reply.json()["payment"]["amount"] == "52.25"


async def test_unsupported_content_type_is_415_in_the_dialect_shape(client: Client) -> None:
    invoice = await make_invoice(client)

    reply = await call(
        client,
        "harvest",
        "POST",
        f"/invoices/{invoice}/payments",
        HARVEST_XML.encode(),
        {"Content-Type": "text/plain"},
    )

    assert reply.status == 415
    assert error_messages(reply) == ["Content-Type must be application/xml or application/json"]


async def test_harvest_malformed_xml_is_400_with_a_hint(client: Client) -> None:
    invoice = await make_invoice(client)

    reply = await call(
        client,
        "harvest",
        "POST",
        f"/invoices/{invoice}/payments",
        b"<payment><amount>1</amount>",
        {"Content-Type": "application/xml"},
    )

    assert reply.status == 400
    messages = error_messages(reply)
    assert len(messages) == 1 and messages[0].startswith("Malformed XML: ")
    assert reply.headers["Hint"] == messages[0]
    assert await state(client, invoice) == ("1000.00", "open", 0)


async def test_unsatisfiable_accept_is_406(client: Client) -> None:
    invoice = await make_invoice(client)

    reply = await call(
        client, "harvest", "GET", f"/invoices/{invoice}/payments", headers={"Accept": "text/html"}
    )

    assert reply.status == 406
    assert error_messages(reply) == ["Can only answer in xml, json"]


# --- Rails-style request elements -----------------------------------------------------


@pytest.mark.parametrize(
    ("element", "expected"),
    [
        ('<paid-at type="dateTime">2008-02-14T10:30:00Z</paid-at>', "2008-02-14T10:30:00Z"),
        ('<paid-at type="datetime">2008-02-14 10:30:00</paid-at>', "2008-02-14T10:30:00Z"),
        ("<paid-at>2008-02-14 10:30:00 UTC</paid-at>", "2008-02-14T10:30:00Z"),
        ('<paid_at type="dateTime">2008-02-14T11:30:00+01:00</paid_at>', "2008-02-14T10:30:00Z"),
        ("<paid_at>2008-02-14 10:30</paid_at>", "2008-02-14T10:30:00Z"),
        ('<paid-at type="date">2008-02-14</paid-at>', "2008-02-14T00:00:00Z"),
    ],
)
async def test_harvest_accepts_rails_datetimes_and_key_styles(
    client: Client, element: str, expected: str
) -> None:
    invoice = await make_invoice(client)
    body = f'<payment>{element}<amount type="decimal">10.0</amount></payment>'

    reply = await call(
        client,
        "harvest",
        "POST",
        f"/invoices/{invoice}/payments.xml",
        body.encode(),
        {"Content-Type": "application/xml"},
    )

    assert reply.status == 201, reply.body
    assert fields(reply.xml())["paid-at"] == ("datetime", expected)


async def test_fastbill_accepts_dasherized_and_typed_elements(client: Client) -> None:
    invoice = await make_invoice(client)
    body = (
        f'<invoice-payment><invoice-id type="integer">{invoice}</invoice-id>'
        '<date type="date">2009-11-03</date><amount type="float">12.34</amount>'
        "<comment>dashes</comment><type>CASH</type></invoice-payment>"
    )

    reply = await call(
        client,
        "fastbill",
        "POST",
        "/api/invoice-payments",
        body.encode(),
        {"Content-Type": "application/xml"},
    )

    assert reply.status == 201, reply.body
    got = fields(reply.xml())
    assert (got["invoice_id"], got["date"], got["amount"], got["type"]) == (
        ("integer", str(invoice)),
        ("date", "2009-11-03"),
        ("float", "12.34"),
        (None, "CASH"),
    )


async def test_harvest_nil_notes_are_written_as_nil(client: Client) -> None:
    invoice = await make_invoice(client)
    body = (
        '<payment><paid-at type="datetime">2008-02-14T00:00:00Z</paid-at>'
        '<amount type="decimal">1.0</amount><notes nil="true"/></payment>'
    )

    reply = await call(
        client,
        "harvest",
        "POST",
        f"/invoices/{invoice}/payments",
        body.encode(),
        {"Content-Type": "application/xml"},
    )

    assert reply.status == 201, reply.body
    assert b'<notes nil="true"/>' in reply.body


# --- paths and ids ----------------------------------------------------------------------


async def test_harvest_singular_payment_path_reads_the_payment(client: Client) -> None:
    invoice = await make_invoice(client)
    number = payment_id("harvest", await pay(client, "harvest", invoice, "3"))

    plural = await call(client, "harvest", "GET", f"/invoices/{invoice}/payments/{number}")
    singular = await call(client, "harvest", "GET", f"/invoices/{invoice}/payment/{number}")

    assert (plural.status, singular.status) == (200, 200)
    assert singular.body == plural.body


async def test_each_dialect_sees_the_same_payment_in_its_own_id_form(client: Client) -> None:
    invoice = await make_invoice(client)
    for _ in range(11):
        await pay(client, "urlkey", invoice, "1")
    number = payment_id("fastbill", await pay(client, "fastbill", invoice, "7"))
    assert number == 12

    harvest = await call(client, "harvest", "GET", f"/invoices/{invoice}/payments/12")
    assert fields(harvest.xml())["id"] == ("integer", "12")
    harvest_json = await call(
        client,
        "harvest",
        "GET",
        f"/invoices/{invoice}/payments/12",
        headers={"Accept": "application/json"},
    )
    assert harvest_json.json()["payment"]["id"] == 12
    fastbill = await call(
        client,
        "fastbill",
        "GET",
        "/api/invoice-payments/12",
        headers={"Accept": "application/json"},
    )
    assert fastbill.json()["invoice_payment"]["id"] == 12
    invoiless = await call(client, "invoiless", "GET", "/v1/payments/12")
    assert (invoiless.json()["id"], invoiless.json()["invoice"]) == ("12", str(invoice))
    urlkey = await call(client, "urlkey", "GET", urlkey_path(invoice))
    assert urlkey.json()["payments"][-1]["_id"] == "00000000000000000000000c"

    ids = await client.get("/gateway/v1/ids/urlkey/payment/00000000000000000000000c", headers=ADMIN)
    assert await ids.json() == {
        "dialect_ids": {
            "harvest": 12,
            "fastbill": 12,
            "invoiless": "12",
            "quickbooks": "12",
            "urlkey": "00000000000000000000000c",
            "xero": "00000000-0000-0000-0000-00000000000c",
        }
    }


@pytest.mark.parametrize("path", ["/v1/payments/0012", "/v1/payments/00000000000000000000000c"])
async def test_invoiless_refuses_ids_in_other_forms(client: Client, path: str) -> None:
    invoice = await make_invoice(client)
    for _ in range(12):
        await pay(client, "invoiless", invoice, "1")

    reply = await call(client, "invoiless", "GET", path)

    assert reply.status == 404


async def test_urlkey_refuses_an_invoice_id_that_is_not_24_hex(client: Client) -> None:
    invoice = await make_invoice(client)

    reply = await call(client, "urlkey", "GET", f"/businesses/acme-biz/invoices/{invoice}/payments")

    assert reply.status == 404
    assert reply.json()["name"] == "NotFound"
    ok = await call(
        client, "urlkey", "GET", f"/businesses/acme-biz/invoices/{hexid(invoice)}/payments"
    )
    assert (ok.status, ok.json()) == (200, {"payments": []})


@pytest.mark.parametrize("singular", [False, True])
async def test_harvest_payment_through_the_wrong_invoice_is_not_found(
    client: Client, singular: bool
) -> None:
    invoice = await make_invoice(client)
    other = await make_invoice(client)
    number = payment_id("harvest", await pay(client, "harvest", invoice, "5"))
    segment = "payment" if singular else "payments"

    got = await call(client, "harvest", "GET", f"/invoices/{other}/{segment}/{number}")
    assert got.status == 404
    assert error_messages(got) == ["Payment not found"]

    deleted = await call(client, "harvest", "DELETE", f"/invoices/{other}/{segment}/{number}")
    assert deleted.status == 404
    assert await state(client, invoice) == ("995.00", "partial", 1)


async def test_another_tenants_payment_is_not_found(client: Client) -> None:
    invoice = await make_invoice(client)
    number = payment_id("invoiless", await pay(client, "invoiless", invoice, "5"))

    reply = await CLIENTS["invoiless"](client, "globex").call("GET", f"/v1/payments/{number}")

    assert reply.status == 404


# --- methods and warnings ---------------------------------------------------------------


async def fastbill_payment(client: Client, invoice: int, method: str) -> int:
    body = (
        f"<invoice-payment><invoice_id>{invoice}</invoice_id><amount>10</amount>"
        f"<type>{method}</type></invoice-payment>"
    )
    reply = await call(
        client,
        "fastbill",
        "POST",
        "/api/invoice-payments",
        body.encode(),
        {"Content-Type": "application/xml"},
    )
    assert reply.status == 201, reply.body
    assert fields(reply.xml())["type"] == (None, method)
    return payment_id("fastbill", reply)


async def test_urlkey_reading_a_coupon_payment_gets_null_and_a_warning(client: Client) -> None:
    invoice = await make_invoice(client)
    await fastbill_payment(client, invoice, "COUPON")

    reply = await call(client, "urlkey", "GET", urlkey_path(invoice))

    assert reply.status == 200
    assert reply.headers["X-Gateway-Warnings"] == (
        "method coupon has no urlkey equivalent; sent as no method"
    )
    assert [p["paymentMethod"] for p in reply.json()["payments"]] == [None]


async def test_reading_a_mappable_method_gives_no_warning(client: Client) -> None:
    invoice = await make_invoice(client)
    await fastbill_payment(client, invoice, "CASH")

    reply = await call(client, "urlkey", "GET", urlkey_path(invoice))

    assert "X-Gateway-Warnings" not in reply.headers
    assert [p["paymentMethod"] for p in reply.json()["payments"]] == ["CASH"]


async def test_same_dialect_reads_back_the_method_word_it_wrote(client: Client) -> None:
    invoice = await make_invoice(client)
    number = await fastbill_payment(client, invoice, "DEBIT")

    fastbill = await call(client, "fastbill", "GET", f"/api/invoice-payments/{number}")
    assert fields(fastbill.xml())["type"] == (None, "DEBIT")
    invoiless = await call(client, "invoiless", "GET", f"/v1/payments/{number}")
    assert invoiless.json()["method"] == "BankTransfer"
    urlkey = await call(client, "urlkey", "GET", urlkey_path(invoice))
    assert urlkey.json()["payments"][0]["paymentMethod"] == "ACCOUNT_TRANSFER"

    # A PATCH in another dialect that leaves the method alone keeps fastbill's word.
    patched = await call(
        client,
        "invoiless",
        "PATCH",
        f"/v1/payments/{number}",
        b'{"notes": "checked"}',
        {"Content-Type": "application/json"},
    )
    assert patched.status == 200, patched.body
    fastbill = await call(client, "fastbill", "GET", f"/api/invoice-payments/{number}")
    assert fields(fastbill.xml())["type"] == (None, "DEBIT")


async def test_invoiless_card_reads_as_bank_card_in_fastbill(client: Client) -> None:
    invoice = await make_invoice(client)
    created = await call(
        client,
        "invoiless",
        "POST",
        f"/v1/invoices/{invoice}/payments",
        b'{"amount": 10, "method": "Card"}',
        {"Content-Type": "application/json"},
    )
    assert created.status == 201, created.body
    number = payment_id("invoiless", created)

    fastbill = await call(client, "fastbill", "GET", f"/api/invoice-payments/{number}")
    assert fields(fastbill.xml())["type"] == (None, "BANK_CARD")
    invoiless = await call(client, "invoiless", "GET", f"/v1/payments/{number}")
    assert invoiless.json()["method"] == "Card"
    urlkey = await call(client, "urlkey", "GET", urlkey_path(invoice))
    assert urlkey.json()["payments"][0]["paymentMethod"] == "DEBIT_CARD"


async def test_a_method_change_in_another_dialect_replaces_the_word(client: Client) -> None:
    invoice = await make_invoice(client)
    number = await fastbill_payment(client, invoice, "DEBIT")

    patched = await call(
        client,
        "invoiless",
        "PATCH",
        f"/v1/payments/{number}",
        b'{"method": "Cash"}',
        {"Content-Type": "application/json"},
    )

    assert patched.status == 200, patched.body
    fastbill = await call(client, "fastbill", "GET", f"/api/invoice-payments/{number}")
    assert fields(fastbill.xml())["type"] == (None, "CASH")
