"""Xero over HTTP: custom-connection tokens, the Payments endpoints, and Xero's own errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote

import pytest
from lxml import etree

from dialects.testing.xero import tenant_id as xero_tenant_id
from dialects.xero import parse_moment
from gateway.config import Config
from gateway.serving.app import create_app

from ..clients import Reply
from ..conftest import AiohttpClient, Client
from ..support import ACCOUNT_ID, ADMIN, basic, new_invoice

PAYMENTS = "/api.xro/2.0/Payments"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON_IO = {"Content-Type": "application/json", "Accept": "application/json"}


def uuid_of(number: int) -> str:
    return f"00000000-0000-0000-0000-{number:012x}"


async def token(client: Client, tenant: str = "acme") -> str:
    auth = basic(f"{tenant}-xero-client", f"{tenant}-xero-secret")
    response = await client.post(
        "/connect/token", data=b"grant_type=client_credentials", headers={**auth, **FORM}
    )
    assert response.status == 200, await response.text()
    answer: dict[str, Any] = await response.json()
    return str(answer["access_token"])


async def xero(
    client: Client,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    *,
    tenant: str = "acme",
) -> Reply:
    sent = {
        "Authorization": f"Bearer {await token(client, tenant)}",
        "xero-tenant-id": xero_tenant_id(tenant),
        **(headers or {}),
    }
    async with client.request(method, path, data=body, headers=sent) as response:
        return Reply(response.status, await response.read(), dict(response.headers))


async def put_json(
    client: Client, *payments: dict[str, Any], query: str = "", tenant: str = "acme"
) -> Reply:
    body = json.dumps({"Payments": list(payments)}).encode()
    return await xero(client, "PUT", PAYMENTS + query, body, JSON_IO, tenant=tenant)


def by_id(invoice: int, amount: str, **extra: Any) -> dict[str, Any]:
    return {"Invoice": {"InvoiceID": uuid_of(invoice)}, "Amount": amount, **extra}


# --- custom connections ---------------------------------------------------------------


async def test_token_for_client_credentials_in_basic_or_in_the_form(client: Client) -> None:
    in_basic = await client.post(
        "/connect/token",
        data=b"grant_type=client_credentials",
        headers={**basic("acme-xero-client", "acme-xero-secret"), **FORM},
    )
    in_form = await client.post(
        "/connect/token",
        data=b"grant_type=client_credentials&client_id=acme-xero-client"
        b"&client_secret=acme-xero-secret",
        headers=FORM,
    )
    for response in (in_basic, in_form):
        assert response.status == 200
        answer = await response.json()
        assert set(answer) == {"access_token", "expires_in", "token_type", "scope"}
        assert (answer["token_type"], answer["expires_in"]) == ("Bearer", 3600)


GOOD = basic("acme-xero-client", "acme-xero-secret")


@pytest.mark.parametrize(
    ("body", "headers", "status", "error"),
    [
        (b"grant_type=client_credentials", basic("acme-xero-client", "wrong"), 401, "invalid_client"),
        (b"grant_type=client_credentials", basic("nobody", "acme-xero-secret"), 401, "invalid_client"),
        (b"grant_type=client_credentials", {}, 401, "invalid_client"),
        (b"grant_type=client_credentials", {"Authorization": "Basic %%%"}, 401, "invalid_client"),
        (b"grant_type=client_credentials&client_id=acme-xero-client", {}, 401, "invalid_client"),
        (b"grant_type=authorization_code", GOOD, 400, "unsupported_grant_type"),
        (b"grant_type=refresh_token&refresh_token=x", GOOD, 400, "unsupported_grant_type"),
        (b"grant_type=", GOOD, 400, "invalid_request"),
        (b"scope=x", GOOD, 400, "invalid_request"),
        (b"grant_type=client_credentials&grant_type=client_credentials", GOOD, 400, "invalid_request"),
        (b"grant_type=client_credentials\xff", GOOD, 400, "invalid_request"),
    ],
)  # fmt: skip
async def test_a_bad_grant_gets_no_token_and_an_oauth2_error(
    client: Client, body: bytes, headers: dict[str, str], status: int, error: str
) -> None:
    """RFC 6749 section 5.2: `{"error": code}`, 401 for the client's authentication, else 400."""
    response = await client.post("/connect/token", data=body, headers={**headers, **FORM})
    assert response.status == status
    answer = await response.json()
    assert answer["error"] == error
    assert set(answer) <= {"error", "error_description"}
    assert isinstance(answer.get("error_description", ""), str)
    assert response.headers["Cache-Control"] == "no-store"
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Basic ")


async def test_a_token_request_that_is_not_a_form_is_an_invalid_request(client: Client) -> None:
    headers = {**GOOD, "Content-Type": "application/json"}
    response = await client.post("/connect/token", data=b"{}", headers=headers)
    assert response.status == 400
    assert (await response.json())["error"] == "invalid_request"


async def clocked(
    aiohttp_client: AiohttpClient, config: Config
) -> tuple[Client, list[datetime], dict[str, str]]:
    """A gateway on a clock the test moves, and the headers of a token it issued."""
    now = [datetime(2026, 12, 1, 9, 0, tzinfo=UTC)]
    client = await aiohttp_client(create_app(config, clock=lambda: now[0]))
    headers = {
        "Authorization": f"Bearer {await token(client)}",
        "xero-tenant-id": xero_tenant_id("acme"),
    }
    return client, now, headers


async def test_an_expired_token_says_token_expired_and_a_new_one_works(
    aiohttp_client: AiohttpClient, config: Config
) -> None:
    """Xero's SDKs fetch a new token on `TokenExpired`; the clock is moved, not waited for."""
    client, now, headers = await clocked(aiohttp_client, config)
    assert (await client.get(PAYMENTS, headers=headers)).status == 200
    now[0] += timedelta(seconds=3600 + 31)  # the token's lifetime and the leeway
    response = await client.get(PAYMENTS, headers=headers)
    assert response.status == 401
    problem = await response.json()
    detail = "TokenExpired: token expired at 12/01/2026 10:00:00"
    assert (problem["Title"], problem["Status"], problem["Detail"]) == ("Unauthorized", 401, detail)
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer error="invalid_token", error_description="{detail}"'
    )
    headers["Authorization"] = f"Bearer {await token(client)}"
    assert (await client.get(PAYMENTS, headers=headers)).status == 200


async def test_a_token_from_the_future_is_not_yet_valid(
    aiohttp_client: AiohttpClient, config: Config
) -> None:
    client, now, headers = await clocked(aiohttp_client, config)
    now[0] -= timedelta(minutes=5)
    response = await client.get(PAYMENTS, headers=headers)
    assert response.status == 401
    assert "TokenExpired" not in (await response.json())["Detail"]
    assert "WWW-Authenticate" not in response.headers


# --- the organisation -----------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["xml", "json"])
async def test_the_organisation_is_the_tenants_in_xeros_envelope(client: Client, fmt: str) -> None:
    accept = {"Accept": "application/json"} if fmt == "json" else {}
    reply = await xero(client, "GET", "/api.xro/2.0/Organisation", headers=accept)
    assert reply.status == 200, reply.body
    if fmt == "json":
        document = json.loads(reply.body)
        assert document["Status"] == "OK"
        [organisation] = document["Organisations"]
    else:
        root = etree.fromstring(reply.body)
        assert (root.tag, root.findtext("Status")) == ("Response", "OK")
        [element] = root.findall("Organisations/Organisation")
        organisation = {child.tag: child.text for child in element}
    assert organisation["OrganisationID"] == xero_tenant_id("acme")
    assert (organisation["Name"], organisation["LegalName"]) == ("Acme", "Acme")
    assert (organisation["BaseCurrency"], organisation["Version"]) == ("USD", "GLOBAL")
    assert organisation["OrganisationStatus"] == "ACTIVE"
    assert len(organisation["ShortCode"]) == 6 and organisation["ShortCode"][0] == "!"


async def test_the_organisation_takes_what_the_config_says(
    aiohttp_client: AiohttpClient, config: Config
) -> None:
    tenant = config.tenants["acme"]
    section = tenant.section("xero")
    organisation = {"name": "Acme Pty", "legal_name": "Acme Holdings Pty Ltd",
                    "short_code": "!Ab3dE", "base_currency": "AUD", "country_code": "AU",
                    "version": "AU", "timezone": "AUSEASTERNSTANDARDTIME"}  # fmt: skip
    changed = section.model_validate({**section.model_dump(), "organisation": organisation})
    tenants = {**config.tenants, "acme": tenant.model_copy(update={"xero": changed})}
    client = await aiohttp_client(create_app(config.model_copy(update={"tenants": tenants})))
    reply = await xero(client, "GET", "/api.xro/2.0/Organisation", headers=JSON_IO)
    [found] = json.loads(reply.body)["Organisations"]
    assert {k: found[k] for k in ("Name", "LegalName", "ShortCode", "BaseCurrency")} == {
        "Name": "Acme Pty",
        "LegalName": "Acme Holdings Pty Ltd",
        "ShortCode": "!Ab3dE",
        "BaseCurrency": "AUD",
    }
    assert (found["CountryCode"], found["Version"], found["Timezone"]) == (
        "AU",
        "AU",
        "AUSEASTERNSTANDARDTIME",
    )


async def test_the_organisation_needs_the_tokens_tenant(client: Client) -> None:
    headers = {"Authorization": f"Bearer {await token(client)}"}
    response = await client.get("/api.xro/2.0/Organisation", headers=headers)
    assert response.status == 403
    headers["xero-tenant-id"] = xero_tenant_id("globex")
    assert (await client.get("/api.xro/2.0/Organisation", headers=headers)).status == 403
    assert (await client.get("/api.xro/2.0/Organisation")).status == 401


async def test_connections_list_the_tenant_the_token_opens(client: Client) -> None:
    bearer = {"Authorization": f"Bearer {await token(client)}"}
    response = await client.get("/connections", headers=bearer)
    assert response.status == 200
    [connection] = await response.json()
    assert connection["tenantId"] == xero_tenant_id("acme")
    assert (connection["tenantType"], connection["tenantName"]) == ("ORGANISATION", "Acme")


async def test_payments_need_a_token_in_xeros_401(client: Client) -> None:
    response = await client.get(PAYMENTS, headers={"xero-tenant-id": xero_tenant_id("acme")})
    assert response.status == 401
    problem = await response.json()
    assert (problem["Title"], problem["Status"], problem["Detail"]) == (
        "Unauthorized",
        401,
        "AuthenticationUnsuccessful",
    )


@pytest.mark.parametrize("tenant_id", [None, "", xero_tenant_id("globex"), "not-a-uuid"])
async def test_payments_need_the_tokens_own_tenant_in_xeros_403(
    client: Client, tenant_id: str | None
) -> None:
    headers = {"Authorization": f"Bearer {await token(client)}"}
    if tenant_id is not None:
        headers["Xero-Tenant-Id"] = tenant_id
    response = await client.get(PAYMENTS, headers=headers)
    assert response.status == 403
    problem = await response.json()
    assert (problem["Title"], problem["Status"], problem["Detail"]) == (
        "Forbidden",
        403,
        "AuthenticationUnsuccessful",
    )


async def test_a_tenant_sees_none_of_another_tenants_payments(client: Client) -> None:
    invoice = await new_invoice(client, tenant="globex")
    made = await put_json(client, by_id(invoice["id"], "10.00"), tenant="globex")
    assert made.status == 200
    paid = made.json()["Payments"][0]["PaymentID"]

    assert (await xero(client, "GET", f"{PAYMENTS}/{paid}")).status == 404
    assert (await put_json(client, by_id(invoice["id"], "1.00"))).status == 400
    assert (await xero(client, "GET", PAYMENTS, headers=JSON_IO)).json()["Payments"] == []


# --- creating ------------------------------------------------------------------------------


async def test_put_creates_one_payment_in_json_with_the_default_account(client: Client) -> None:
    invoice = await new_invoice(client, total="100.00")
    reply = await put_json(
        client, by_id(invoice["id"], "40.00", Date="2026-11-20", Reference="wire 7")
    )
    assert reply.status == 200, reply.body
    document = reply.json()
    assert document["Status"] == "OK"
    [payment] = document["Payments"]
    assert payment["Amount"] == 40.0 and payment["Reference"] == "wire 7"
    assert payment["Date"] == "/Date(1795132800000+0000)/"
    assert payment["Account"] == {"AccountID": ACCOUNT_ID, "Code": "090", "Name": "Bank"}
    assert payment["Invoice"]["InvoiceID"] == uuid_of(invoice["id"])
    assert payment["PaymentID"].startswith("00000000-0000-0000-0000-")


async def test_without_a_default_account_a_payment_must_name_its_account(
    aiohttp_client: AiohttpClient, config: Config
) -> None:
    """Xero requires `Account`; the default applies only where the operator sets one."""
    tenants = {
        **config.tenants,
        "acme": config.tenants["acme"].model_copy(update={"default_account": None}),
    }
    client = await aiohttp_client(create_app(config.model_copy(update={"tenants": tenants})))
    invoice = await new_invoice(client, total="100.00")
    refused = await put_json(client, by_id(invoice["id"], "40.00"))
    assert refused.status == 400
    [element] = refused.json()["Elements"]
    assert element["ValidationErrors"] == [{"Message": "Account.Code can't be blank"}]
    named = await put_json(client, by_id(invoice["id"], "40.00", Account={"Code": "091"}))
    assert named.status == 200 and named.json()["Payments"][0]["Account"] == {"Code": "091"}


async def test_post_takes_a_bare_xml_payment_naming_the_invoice_by_number(
    client: Client,
) -> None:
    invoice = await new_invoice(client, number="INV-0002")
    body = (
        b"<Payment><Invoice><InvoiceNumber>INV-0002</InvoiceNumber></Invoice>"
        b"<Account><Code>091</Code></Account><Date>2026-11-20T00:00:00</Date>"
        b"<Amount>32.06</Amount></Payment>"
    )
    reply = await xero(client, "POST", PAYMENTS, body, {"Content-Type": "application/xml"})
    assert reply.status == 200, reply.body
    assert reply.headers["Content-Type"] == "application/xml; charset=utf-8"
    root = etree.fromstring(reply.body)
    assert root.tag == "Response"
    payment = root.find("Payments/Payment")
    assert payment is not None
    assert payment.findtext("Amount") == "32.06"
    assert payment.findtext("Account/Code") == "091"
    assert payment.findtext("Invoice/InvoiceID") == uuid_of(invoice["id"])


async def test_put_creates_many_in_order(client: Client) -> None:
    invoice = await new_invoice(client, total="100.00")
    reply = await put_json(client, *(by_id(invoice["id"], f"{n}.00") for n in (1, 2, 3)))
    assert [p["Amount"] for p in reply.json()["Payments"]] == [1.0, 2.0, 3.0]


@pytest.mark.parametrize(
    ("payment", "message"),
    [
        ({"Invoice": {"InvoiceNumber": "NO-SUCH"}, "Amount": "1.00"}, "Invoice.InvoiceID could"),
        ({"Invoice": {"InvoiceID": uuid_of(999)}, "Amount": "1.00"}, "Invoice.InvoiceID could"),
        ({"Amount": "1.00"}, "Invoice.InvoiceID can't be blank"),
        ({"Invoice": {"InvoiceNumber": "X"}}, "Amount can't be blank"),
        (
            {"Invoice": {"InvoiceNumber": "X"}, "Amount": "1", "Account": {"Code": "999"}},
            "Account.Code is not an account",
        ),
    ],
)
async def test_refusals_are_validation_exceptions(
    client: Client, payment: dict[str, Any], message: str
) -> None:
    reply = await put_json(client, payment)
    assert reply.status == 400, reply.body
    document = reply.json()
    assert (document["ErrorNumber"], document["Type"]) == (10, "ValidationException")
    [problem] = document["Elements"][0]["ValidationErrors"]
    assert problem["Message"].startswith(message)


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_overpayment_says_what_xero_says_and_records_nothing(
    client: Client, fmt: str
) -> None:
    invoice = await new_invoice(client, total="10.00")
    if fmt == "json":
        reply = await put_json(client, by_id(invoice["id"], "10.01"))
        messages = [e["Message"] for e in reply.json()["Elements"][0]["ValidationErrors"]]
    else:
        body = (
            f"<Payments><Payment><Invoice><InvoiceID>{uuid_of(invoice['id'])}</InvoiceID>"
            "</Invoice><Amount>10.01</Amount></Payment></Payments>"
        ).encode()
        reply = await xero(client, "PUT", PAYMENTS, body, {"Content-Type": "text/xml"})
        root = etree.fromstring(reply.body)
        assert root.tag == "ApiException"
        messages = [e.text for e in root.iter("Message")][1:]
    assert reply.status == 400
    assert messages == ["Payment amount exceeds the amount outstanding on this document"]
    listed = await xero(client, "GET", PAYMENTS, headers=JSON_IO)
    assert listed.json()["Payments"] == []


async def test_unsummarised_errors_answer_each_item(client: Client) -> None:
    invoice = await new_invoice(client, total="10.00")
    reply = await put_json(
        client,
        by_id(invoice["id"], "6.00"),
        by_id(invoice["id"], "6.00"),
        query="?summarizeErrors=false",
    )
    assert reply.status == 200
    made, refused = reply.json()["Payments"]
    assert (made["StatusAttributeString"], made["Amount"]) == ("OK", 6.0)
    assert refused["StatusAttributeString"] == "ERROR"
    assert refused["ValidationErrors"] == [
        {"Message": "Payment amount exceeds the amount outstanding on this document"}
    ]
    assert "PaymentID" not in refused


# --- reading, listing, deleting ------------------------------------------------------------


async def test_get_one_payment_and_the_plain_text_404(client: Client) -> None:
    invoice = await new_invoice(client)
    paid = (await put_json(client, by_id(invoice["id"], "5.00"))).json()["Payments"][0]
    one = await xero(client, "GET", f"{PAYMENTS}/{paid['PaymentID']}", headers=JSON_IO)
    assert one.json()["Payments"] == [paid]

    for missing in (uuid_of(999), "not-a-uuid"):
        reply = await xero(client, "GET", f"{PAYMENTS}/{missing}", headers=JSON_IO)
        assert reply.status == 404
        assert reply.body == b"The resource you're looking for cannot be found"
        assert reply.headers["Content-Type"] == "text/html; charset=utf-8"


async def test_list_filters_by_invoice_status_and_date_and_orders(client: Client) -> None:
    first, second = await new_invoice(client), await new_invoice(client)
    for invoice, amount, day in ((first, "3.00", 10), (second, "1.00", 11), (first, "2.00", 12)):
        await put_json(client, by_id(invoice["id"], amount, Date=f"2026-11-{day}"))

    async def amounts(where: str, order: str = "") -> list[float]:
        query = f"?where={quote(where)}" + (f"&order={quote(order)}" if order else "")
        reply = await xero(client, "GET", PAYMENTS + query, headers=JSON_IO)
        assert reply.status == 200, reply.body
        return [p["Amount"] for p in reply.json()["Payments"]]

    on_first = f'Invoice.InvoiceID==guid("{uuid_of(first["id"])}")'
    assert await amounts(on_first) == [3.0, 2.0]
    assert await amounts(on_first, "Amount ASC") == [2.0, 3.0]
    assert await amounts(f'{on_first} AND Status=="AUTHORISED"') == [3.0, 2.0]
    assert await amounts('Status=="DELETED"') == []
    assert await amounts("Date>=DateTime(2026, 11, 11)", "Date DESC") == [2.0, 1.0]
    assert await amounts("Date>=DateTime(2026,11,11) && Date<DateTime(2026,11,12)") == [1.0]
    either = f'{on_first} OR Invoice.InvoiceID==guid("{uuid_of(second["id"])}")'
    assert await amounts(f"({either})", "Amount DESC") == [3.0, 2.0, 1.0]


async def test_pages_carry_the_pagination_block(client: Client) -> None:
    invoice = await new_invoice(client)
    await put_json(client, *(by_id(invoice["id"], f"{n}.00") for n in range(1, 6)))
    reply = await xero(client, "GET", f"{PAYMENTS}?page=2&pageSize=2", headers=JSON_IO)
    document = reply.json()
    assert [p["Amount"] for p in document["Payments"]] == [3.0, 4.0]
    assert document["pagination"] == {"page": 2, "pageSize": 2, "pageCount": 3, "itemCount": 5}
    clamped = await xero(client, "GET", f"{PAYMENTS}?page=1&pageSize=5000", headers=JSON_IO)
    assert clamped.json()["pagination"]["pageSize"] == 1000


@pytest.mark.parametrize("where", ['Amount>"five"', "Date>=tomorrow", 'Nothing=="x"', "Status"])
async def test_an_unreadable_where_is_a_query_parse_exception(client: Client, where: str) -> None:
    reply = await xero(client, "GET", f"{PAYMENTS}?where={quote(where)}", headers=JSON_IO)
    assert reply.status == 400
    assert (reply.json()["ErrorNumber"], reply.json()["Type"]) == (16, "QueryParseException")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"Status": "DELETED"}', "application/json"),
        (b'{"Payments": [{"Status": "DELETED"}]}', "application/json"),
        (b"<Payment><Status>DELETED</Status></Payment>", "application/xml"),
    ],
)
async def test_delete_is_a_post_of_status_deleted(
    client: Client, body: bytes, content_type: str
) -> None:
    invoice = await new_invoice(client, total="10.00")
    paid = (await put_json(client, by_id(invoice["id"], "10.00"))).json()["Payments"][0]
    path = f"{PAYMENTS}/{paid['PaymentID']}"
    reply = await xero(
        client, "POST", path, body, {"Content-Type": content_type, "Accept": "application/json"}
    )
    assert reply.status == 200, reply.body
    assert reply.json()["Payments"][0]["Status"] == "DELETED"
    kept = await xero(client, "GET", path, headers=JSON_IO)  # Xero keeps it, marked deleted
    assert kept.status == 200
    assert kept.json()["Payments"][0]["Status"] == "DELETED"
    twice = await xero(client, "POST", path, body, {"Content-Type": content_type})
    assert twice.status == 404
    again = await put_json(client, by_id(invoice["id"], "10.00"))  # the amount is due again
    assert again.status == 200


@pytest.mark.stores
async def test_a_deleted_payment_is_listed_and_read_as_deleted(client: Client) -> None:
    invoice = await new_invoice(client, total="30.00")
    kept, gone = (
        await put_json(client, by_id(invoice["id"], "10.00"), by_id(invoice["id"], "5.00"))
    ).json()["Payments"]
    removed = await xero(
        client, "POST", f"{PAYMENTS}/{gone['PaymentID']}", b'{"Status": "DELETED"}', JSON_IO
    )
    assert removed.status == 200
    on_invoice = f'Invoice.InvoiceID==guid("{uuid_of(invoice["id"])}")'

    async def listed(where: str) -> list[tuple[str, str]]:
        reply = await xero(client, "GET", f"{PAYMENTS}?where={quote(where)}", headers=JSON_IO)
        assert reply.status == 200, reply.body
        return [(p["PaymentID"], p["Status"]) for p in reply.json()["Payments"]]

    assert await listed(on_invoice) == [
        (kept["PaymentID"], "AUTHORISED"),
        (gone["PaymentID"], "DELETED"),
    ]
    assert await listed(f'{on_invoice} AND Status=="DELETED"') == [(gone["PaymentID"], "DELETED")]
    assert await listed(f'{on_invoice} AND Status=="AUTHORISED"') == [
        (kept["PaymentID"], "AUTHORISED")
    ]
    one = await xero(client, "GET", f"{PAYMENTS}/{gone['PaymentID']}")
    assert etree.fromstring(one.body).findtext("Payments/Payment/Status") == "DELETED"
    # Another dialect sees it gone, and the invoice has its amount due again.
    harvest = await client.get(
        f"/invoices/{invoice['id']}/payments", headers=basic("acme@example.com", "acme-harvest")
    )
    assert len(etree.fromstring(await harvest.read())) == 1
    assert (await client.get(f"/gateway/v1/invoices/{invoice['id']}", headers=ADMIN)).status == 200


@pytest.mark.stores
@pytest.mark.parametrize("form", ["rfc1123", "iso", "iso-offset"])
async def test_if_modified_since_lists_what_changed_since_deletions_included(
    client: Client, form: str
) -> None:
    invoice = await new_invoice(client, total="30.00")
    first, second = (
        await put_json(client, by_id(invoice["id"], "1.00"), by_id(invoice["id"], "2.00"))
    ).json()["Payments"]
    await xero(
        client, "POST", f"{PAYMENTS}/{first['PaymentID']}", b'{"Status": "DELETED"}', JSON_IO
    )
    on_invoice = quote(f'Invoice.InvoiceID==guid("{uuid_of(invoice["id"])}")')
    everything = (
        await xero(client, "GET", f"{PAYMENTS}?where={on_invoice}", headers=JSON_IO)
    ).json()["Payments"]
    updated = {p["PaymentID"]: parse_moment(p["UpdatedDateUTC"]) for p in everything}
    since = updated[first["PaymentID"]].replace(microsecond=0)  # its deletion, to the second
    header = {
        "rfc1123": format_datetime(since, usegmt=True),
        "iso": since.replace(tzinfo=None).isoformat(),
        "iso-offset": since.astimezone(timezone(timedelta(hours=-8))).isoformat(),
    }[form]
    reply = await xero(
        client,
        "GET",
        f"{PAYMENTS}?where={on_invoice}",
        headers={**JSON_IO, "If-Modified-Since": header},
    )
    assert reply.status == 200, reply.body
    changed = {p["PaymentID"]: p["Status"] for p in reply.json()["Payments"]}
    assert changed == {
        i: s for i, s in ((p["PaymentID"], p["Status"]) for p in everything) if updated[i] >= since
    }
    assert changed[first["PaymentID"]] == "DELETED"
    later = format_datetime(max(updated.values()) + timedelta(seconds=1), usegmt=True)
    none = await xero(
        client,
        "GET",
        f"{PAYMENTS}?where={on_invoice}",
        headers={**JSON_IO, "If-Modified-Since": later},
    )
    assert none.json()["Payments"] == []


@pytest.mark.parametrize(
    "header", ["yesterday", "2026-13-01T00:00:00", "Wed, 99 Foo 2020 00:00:00 GMT"]
)
async def test_an_unreadable_if_modified_since_is_refused(client: Client, header: str) -> None:
    reply = await xero(client, "GET", PAYMENTS, headers={**JSON_IO, "If-Modified-Since": header})
    assert reply.status == 400
    assert "If-Modified-Since" in reply.json()["Message"]


async def test_pagination_only_when_a_page_is_asked_for(client: Client) -> None:
    invoice = await new_invoice(client)
    await put_json(client, by_id(invoice["id"], "1.00"))
    for accept in (JSON_IO, {}):
        unpaged = await xero(client, "GET", PAYMENTS, headers=accept)
        paged = await xero(client, "GET", f"{PAYMENTS}?page=1", headers=accept)
        assert b"pagination" not in unpaged.body and b"pagination" in paged.body


async def test_a_payment_is_never_edited(client: Client) -> None:
    invoice = await new_invoice(client)
    paid = (await put_json(client, by_id(invoice["id"], "5.00"))).json()["Payments"][0]
    path = f"{PAYMENTS}/{paid['PaymentID']}"
    reply = await xero(client, "POST", path, b'{"Amount": 1}', JSON_IO)
    assert reply.status == 400
    one = await xero(client, "GET", path, headers=JSON_IO)
    assert one.json()["Payments"][0]["Amount"] == 5.0


async def test_harvest_and_xero_see_each_others_payments(client: Client) -> None:
    invoice = await new_invoice(client, total="100.00")
    harvest = basic("acme@example.com", "acme-harvest")
    body = (
        b'<payment><paid-at type="datetime">2026-11-20T00:00:00Z</paid-at>'
        b'<amount type="decimal">30.0</amount><notes>from harvest</notes></payment>'
    )
    made = await client.post(
        f"/invoices/{invoice['id']}/payments",
        data=body,
        headers={**harvest, "Content-Type": "application/xml"},
    )
    assert made.status == 201
    await put_json(client, by_id(invoice["id"], "20.00", Reference="from xero"))

    where = "?where=" + quote(f'Invoice.InvoiceID==guid("{uuid_of(invoice["id"])}")')
    seen = (await xero(client, "GET", PAYMENTS + where, headers=JSON_IO)).json()["Payments"]
    assert [(p["Amount"], p["Reference"]) for p in seen] == [
        (30.0, "from harvest"),
        (20.0, "from xero"),
    ]
    listed = await client.get(f"/invoices/{invoice['id']}/payments", headers=harvest)
    root = etree.fromstring(await listed.read())
    assert [(p.findtext("amount"), p.findtext("notes")) for p in root] == [
        ("30.0", "from harvest"),
        ("20.0", "from xero"),
    ]
    state = await client.get(
        f"/gateway/v1/invoices/{invoice['id']}",
        headers={"Authorization": "Bearer test-admin-token"},
    )
    assert Decimal((await state.json())["due_amount"]) == Decimal("50.00")


# --- the invoice and the account beside the payment ------------------------------------


def summary(payment: dict[str, Any]) -> tuple[object, ...]:
    """What an answer tells of a payment's invoice and account."""
    invoice = payment["Invoice"]
    shown = ("InvoiceNumber", "AmountDue", "Status", "CurrencyCode")
    return (*(invoice.get(name) for name in shown), payment["Account"].get("Name"))


def xml_summary(body: bytes) -> tuple[object, ...]:
    payment = etree.fromstring(body).find("Payments/Payment")
    assert payment is not None
    shown = ("InvoiceNumber", "AmountDue", "Status", "CurrencyCode")
    found = (payment.findtext(f"Invoice/{name}") for name in shown)
    return (*found, payment.findtext("Account/Name"))


@pytest.mark.stores
async def test_every_answer_tells_of_the_invoice_as_it_stands_and_the_accounts_name(
    client: Client,
) -> None:
    """Create (by number, summarised, item by item, keyed), get, list and delete (plain
    and keyed): each answer carries the invoice's number, currency and amount due as of
    that answer, and the deposit account's name from the tenant's accounts."""
    invoice = await new_invoice(client, total="100.00", currency="GBP")
    number = invoice["number"]
    made = await put_json(client, {"Invoice": {"InvoiceNumber": number}, "Amount": "40.00"})
    assert made.status == 200, made.body
    [first] = made.json()["Payments"]
    assert summary(first) == (number, 60.0, "AUTHORISED", "GBP", "Bank")
    assert first["Invoice"]["InvoiceID"] == uuid_of(invoice["id"])
    assert "Contact" not in first["Invoice"]  # invoices have no customer here

    each = await put_json(client, by_id(invoice["id"], "10.00"), query="?summarizeErrors=false")
    [second] = each.json()["Payments"]
    assert second["StatusAttributeString"] == "OK"
    assert summary(second) == (number, 50.0, "AUTHORISED", "GBP", "Bank")

    keyed = {**JSON_IO, "Idempotency-Key": "pay-the-rest"}
    body = json.dumps(by_id(invoice["id"], "50.00")).encode()
    rest = await xero(client, "PUT", PAYMENTS, body, keyed)
    assert rest.status == 200, rest.body
    [third] = rest.json()["Payments"]
    assert summary(third) == (number, 0.0, "PAID", "GBP", "Bank")
    again = await xero(client, "PUT", PAYMENTS, body, keyed)
    assert (again.body, again.headers["Idempotent-Replayed"]) == (rest.body, "true")

    # Read later, the first payment's invoice is as it stands now: paid.
    one = await xero(client, "GET", f"{PAYMENTS}/{first['PaymentID']}", headers=JSON_IO)
    assert summary(one.json()["Payments"][0]) == (number, 0.0, "PAID", "GBP", "Bank")
    as_xml = await xero(client, "GET", f"{PAYMENTS}/{first['PaymentID']}")
    assert xml_summary(as_xml.body) == (number, "0.00", "PAID", "GBP", "Bank")
    where = quote(f'Invoice.InvoiceNumber=="{number}"')
    listed = await xero(client, "GET", f"{PAYMENTS}?where={where}", headers=JSON_IO)
    assert [summary(p) for p in listed.json()["Payments"]] == [
        (number, 0.0, "PAID", "GBP", "Bank")
    ] * 3

    # A deletion answers with the invoice as it left it, keyed or not.
    gone = await xero(
        client, "POST", f"{PAYMENTS}/{third['PaymentID']}", b'{"Status": "DELETED"}', JSON_IO
    )
    assert summary(gone.json()["Payments"][0]) == (number, 50.0, "AUTHORISED", "GBP", "Bank")
    removal = b"<Payment><Status>DELETED</Status></Payment>"
    key = {"Idempotency-Key": "delete-the-second", "Content-Type": "application/xml"}
    path = f"{PAYMENTS}/{second['PaymentID']}"
    deleted = await xero(client, "POST", path, removal, key)
    assert deleted.status == 200, deleted.body
    assert xml_summary(deleted.body) == (number, "60.00", "AUTHORISED", "GBP", "Bank")
    assert (await xero(client, "POST", path, removal, key)).body == deleted.body


async def test_an_account_without_a_name_and_another_dialects_answer_show_none(
    client: Client,
) -> None:
    invoice = await new_invoice(client, total="100.00")
    made = await put_json(client, by_id(invoice["id"], "40.00", Account={"Code": "091"}))
    [payment] = made.json()["Payments"]
    assert payment["Account"] == {"Code": "091"}
    assert payment["Invoice"]["AmountDue"] == 60.0
    harvest = await client.get(
        f"/invoices/{invoice['id']}/payments", headers=basic("acme@example.com", "acme-harvest")
    )
    assert b"AmountDue" not in await harvest.read()
