"""Xero's own Python SDK (xero-python) against a real gateway process, and a Harvest client beside it."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from lxml import etree
from xero_python.accounting import (  # type: ignore[import-untyped]
    Account,
    AccountingApi,
    Invoice,
    Payment,
    PaymentDelete,
    Payments,
)
from xero_python.accounting.models import CurrencyCode  # type: ignore[import-untyped]
from xero_python.api_client import ApiClient, Configuration  # type: ignore[import-untyped]
from xero_python.api_client.oauth2 import OAuth2Token, TokenApi  # type: ignore[import-untyped]
from xero_python.exceptions import (  # type: ignore[import-untyped]
    AccountingBadRequestException,
    HTTPStatusException,
    NotFoundException,
)
from xero_python.identity import IdentityApi  # type: ignore[import-untyped]

from dialects.testing.xero import tenant_id as xero_tenant_id
from gateway.serving.app import create_app

from ..http.server import ADMIN_TOKEN, Server, running, write_config
from ..support import basic, make_config

HARVEST = basic("acme@example.com", "acme-harvest")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("xero-sdk")
    config = write_config(directory)
    with running(config, directory / "sdk.db", directory / "server.log") as started:
        yield started.wait_ready()


def connect(
    url: str, monkeypatch: pytest.MonkeyPatch, secret: str = "acme-xero-secret"
) -> tuple[AccountingApi, ApiClient]:
    """The SDK as a custom connection would use it, with a client-credentials token.

    The SDK's token endpoint is a class attribute of its TokenApi, and each API takes
    its base URL: both point at the gateway.
    """
    monkeypatch.setattr(TokenApi, "client_credentials_token_url", f"{url}/connect/token")
    saved: dict[str, Any] = {}
    api_client = ApiClient(
        Configuration(oauth2_token=OAuth2Token(client_id="acme-xero-client", client_secret=secret)),
        pool_threads=1,
        oauth2_token_getter=lambda: saved.get("token"),
        oauth2_token_saver=lambda token: saved.update(token=token),
    )
    api_client.get_client_credentials_token()
    return AccountingApi(api_client, base_url=f"{url}/api.xro/2.0"), api_client


@pytest.fixture
def sdk(server: Server, monkeypatch: pytest.MonkeyPatch) -> tuple[AccountingApi, str]:
    """The SDK connected, and the tenant its connection names."""
    api, api_client = connect(server.url, monkeypatch)
    [connection] = IdentityApi(api_client, base_url=server.url).get_connections()
    assert connection.tenant_id == xero_tenant_id("acme")
    return api, connection.tenant_id


@pytest.fixture
def clocked(tmp_path: Path) -> Iterator[tuple[str, list[datetime]]]:
    """A gateway serving on a thread of its own, on a clock the test moves."""
    now = [datetime.now(UTC)]
    app = create_app(make_config(f"sqlite:///{tmp_path / 'clocked.db'}"), clock=lambda: now[0])
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0).start())
    host, port = runner.addresses[0][:2]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{port}", now
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()


def admin(server: Server, method: str, path: str, body: object = None) -> Any:
    request = urllib.request.Request(
        server.url + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def new_invoice(server: Server, number: str, total: str) -> dict[str, Any]:
    body = {
        "tenant": "acme",
        "number": number,
        "currency": "EUR",
        "total": total,
        "issued_on": "2026-01-01",
        "due_on": "2999-12-31",
    }
    created: dict[str, Any] = admin(server, "POST", "/gateway/v1/invoices", body)
    return created


def harvest(server: Server, method: str, path: str, body: bytes | None = None) -> bytes:
    headers = {**HARVEST, "Content-Type": "application/xml"}
    request = urllib.request.Request(server.url + path, data=body, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: bytes = response.read()
        return answer


def invoice_summary(payment: Payment) -> tuple[object, ...]:
    invoice = payment.invoice
    return (invoice.invoice_number, invoice.amount_due, invoice.currency_code, payment.account.name)


def test_sdk_creates_lists_gets_and_deletes_a_payment(
    server: Server, sdk: tuple[AccountingApi, str]
) -> None:
    api, tenant = sdk
    server_invoice = new_invoice(server, "SDK-1", "100.00")
    invoice_id = server_invoice["dialect_ids"]["xero"]

    payment = Payment(
        invoice=Invoice(invoice_number="SDK-1"),
        account=Account(code="090"),
        date=date(2026, 11, 20),
        amount=40.25,
        reference="paid by the SDK",
    )
    [created] = api.create_payment(tenant, payment).payments
    assert created.amount == 40.25
    assert created.date == date(2026, 11, 20)
    assert created.status == "AUTHORISED"
    assert created.invoice.invoice_id == invoice_id
    assert created.account.code == "090"
    # The invoice's summary and the account's name, as the SDK's models read them.
    assert invoice_summary(created) == ("SDK-1", 59.75, CurrencyCode.EUR, "Bank")

    listed = api.get_payments(tenant, where=f'Invoice.InvoiceID==guid("{invoice_id}")').payments
    assert [p.payment_id for p in listed] == [created.payment_id]
    assert [invoice_summary(p) for p in listed] == [("SDK-1", 59.75, CurrencyCode.EUR, "Bank")]

    [fetched] = api.get_payment(tenant, created.payment_id).payments
    assert (fetched.reference, fetched.amount) == ("paid by the SDK", 40.25)
    assert invoice_summary(fetched) == ("SDK-1", 59.75, CurrencyCode.EUR, "Bank")

    [deleted] = api.delete_payment(
        tenant, created.payment_id, PaymentDelete(status="DELETED")
    ).payments
    assert deleted.status == "DELETED"
    assert invoice_summary(deleted) == ("SDK-1", 100.0, CurrencyCode.EUR, "Bank")
    # Xero keeps a deleted payment readable, marked deleted; it cannot be deleted twice.
    [kept] = api.get_payment(tenant, created.payment_id).payments
    assert (kept.status, kept.amount, kept.reference) == ("DELETED", 40.25, "paid by the SDK")
    with pytest.raises(NotFoundException):
        api.delete_payment(tenant, created.payment_id, PaymentDelete(status="DELETED"))
    state = admin(server, "GET", f"/gateway/v1/invoices/{server_invoice['id']}")
    assert Decimal(state["due_amount"]) == Decimal("100.00")


def test_sdk_reads_an_overpayment_through_its_own_exception(
    server: Server, sdk: tuple[AccountingApi, str]
) -> None:
    api, tenant = sdk
    invoice = new_invoice(server, "SDK-2", "10.00")
    payment = Payment(
        invoice=Invoice(invoice_id=invoice["dialect_ids"]["xero"]),
        account=Account(code="090"),
        date=date(2026, 11, 20),
        amount=10.01,
    )
    with pytest.raises(AccountingBadRequestException) as caught:
        api.create_payments(tenant, Payments(payments=[payment]))
    # The SDK reads Xero's first validation message as the exception's reason.
    assert caught.value.status == 400
    assert caught.value.reason == "Payment amount exceeds the amount outstanding on this document"
    error = caught.value.error_data
    assert (error["ErrorNumber"], error["Type"]) == (10, "ValidationException")
    assert (
        api.get_payments(
            tenant, where=f'Invoice.InvoiceID==guid("{payment.invoice.invoice_id}")'
        ).payments
        == []
    )


def test_harvest_xml_and_the_sdk_see_each_others_payments(
    server: Server, sdk: tuple[AccountingApi, str]
) -> None:
    api, tenant = sdk
    invoice = new_invoice(server, "SDK-3", "100.00")
    harvest(
        server,
        "POST",
        f"/invoices/{invoice['id']}/payments",
        b'<payment><paid-at type="datetime">2026-11-19T00:00:00Z</paid-at>'
        b'<amount type="decimal">30.0</amount><notes>from harvest</notes></payment>',
    )
    api.create_payment(
        tenant,
        Payment(
            invoice=Invoice(invoice_number="SDK-3"),
            account=Account(code="090"),
            date=date(2026, 11, 20),
            amount=20,
            reference="from the sdk",
        ),
    )

    where = f'Invoice.InvoiceID==guid("{invoice["dialect_ids"]["xero"]}")'
    seen = api.get_payments(tenant, where=where, order="Date ASC").payments
    assert [(p.amount, p.reference, p.date) for p in seen] == [
        (30.0, "from harvest", date(2026, 11, 19)),
        (20.0, "from the sdk", date(2026, 11, 20)),
    ]
    listed = etree.fromstring(harvest(server, "GET", f"/invoices/{invoice['id']}/payments"))
    assert [(p.findtext("amount"), p.findtext("notes")) for p in listed] == [
        ("30.0", "from harvest"),
        ("20.0", "from the sdk"),
    ]


def where_invoice(server: Server, number: str) -> str:
    """A new invoice of 100.00, as a `where` clause that names it."""
    invoice = new_invoice(server, number, "100.00")
    return f'Invoice.InvoiceID==guid("{invoice["dialect_ids"]["xero"]}")'


def sdk_pay(
    api: AccountingApi, tenant: str, number: str, amount: float, day: int = 20, reference: str = ""
) -> Any:
    """A payment the SDK makes on the invoice with that number, as created."""
    payment = Payment(invoice=Invoice(invoice_number=number), account=Account(code="090"),
                      date=date(2026, 11, day), amount=amount, reference=reference or None)  # fmt: skip
    return api.create_payment(tenant, payment).payments[0]


def test_sdk_reads_the_organisation(sdk: tuple[AccountingApi, str]) -> None:
    api, tenant = sdk
    [organisation] = api.get_organisations(tenant).organisations
    assert (organisation.organisation_id, organisation.name) == (tenant, "Acme")
    assert organisation.base_currency == CurrencyCode.USD
    assert (organisation.version, organisation.organisation_status) == ("GLOBAL", "ACTIVE")
    assert organisation.short_code.startswith("!") and len(organisation.short_code) == 6


def test_sdk_gets_a_new_token_on_token_expired(
    clocked: tuple[str, list[datetime]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What an integrator does on `TokenExpired`: a new client-credentials token, then again."""
    url, now = clocked
    api, api_client = connect(url, monkeypatch)
    tenant = xero_tenant_id("acme")
    assert api.get_payments(tenant).payments == []
    now[0] += timedelta(hours=2)
    with pytest.raises(HTTPStatusException) as caught:
        api.get_payments(tenant)
    assert caught.value.status == 401
    problem = json.loads(caught.value.body)
    assert problem["Detail"].startswith("TokenExpired: token expired at ")
    assert caught.value.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    api_client.get_client_credentials_token()
    assert api.get_payments(tenant).payments == []


def test_sdk_reads_a_refused_token_as_an_oauth2_error(
    server: Server, sdk: tuple[AccountingApi, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    api, _ = sdk
    token_api = TokenApi(api.api_client, "acme-xero-client", "wrong")
    with pytest.raises(HTTPStatusException) as caught:
        token_api.get_client_credentials_token(False)
    assert caught.value.status == 401
    assert json.loads(caught.value.body)["error"] == "invalid_client"


def test_sdk_syncs_what_changed_since_deleted_payments_included(
    server: Server, sdk: tuple[AccountingApi, str]
) -> None:
    api, tenant = sdk
    on_invoice = where_invoice(server, "SDK-SYNC")

    def pay(amount: float) -> Any:
        return sdk_pay(api, tenant, "SDK-SYNC", amount)

    first, second = pay(1), pay(2)
    since = second.updated_date_utc
    api.delete_payment(tenant, first.payment_id, PaymentDelete(status="DELETED"))
    third = pay(3)
    everything = api.get_payments(tenant, where=on_invoice).payments
    assert {p.payment_id: p.status for p in everything} == {
        first.payment_id: "DELETED",
        second.payment_id: "AUTHORISED",
        third.payment_id: "AUTHORISED",
    }
    changed = api.get_payments(tenant, if_modified_since=since, where=on_invoice).payments
    assert {p.payment_id for p in changed} == {
        p.payment_id for p in everything if p.updated_date_utc >= since
    }
    assert {first.payment_id, second.payment_id, third.payment_id} <= {
        p.payment_id for p in changed
    } | ({first.payment_id} if first.updated_date_utc < since else set())
    later = max(p.updated_date_utc for p in everything) + timedelta(seconds=1)
    assert api.get_payments(tenant, if_modified_since=later, where=on_invoice).payments == []
    deleted = api.get_payments(tenant, where=f'{on_invoice} AND Status=="DELETED"').payments
    assert [(p.payment_id, p.status) for p in deleted] == [(first.payment_id, "DELETED")]


def test_sdk_filters_on_any_element_of_a_payment(
    server: Server, sdk: tuple[AccountingApi, str]
) -> None:
    api, tenant = sdk
    on_invoice = where_invoice(server, "SDK-WHERE")
    for amount, reference, day in (
        (5, "cash at the desk", 18),
        (15, "wire 77", 19),
        (25, "wire 78", 20),
    ):
        sdk_pay(api, tenant, "SDK-WHERE", amount, day=day, reference=reference)

    def amounts(where: str) -> list[float]:
        found = api.get_payments(tenant, where=f"{on_invoice} AND {where}", order="Amount")
        return [p.amount for p in found.payments]

    assert amounts("Amount>10") == [15, 25]
    assert amounts('Amount<=15.00 AND Reference.StartsWith("wire")') == [15]
    assert amounts('Reference=="cash at the desk"') == [5]
    assert amounts('Reference.Contains("7")') == [15, 25]
    assert amounts('PaymentType=="ACCRECPAYMENT" AND Status=="AUTHORISED"') == [5, 15, 25]
    assert amounts('PaymentType=="ACCPAYPAYMENT"') == []
    assert amounts("Date>=DateTime(2026, 11, 19) AND IsReconciled==false") == [15, 25]
    assert amounts('Account.Code=="090" AND Invoice.Type=="ACCREC"') == [5, 15, 25]
    by_number = api.get_payments(tenant, where='Invoice.InvoiceNumber=="SDK-WHERE"', order="Amount")
    assert [p.amount for p in by_number.payments] == [5, 15, 25]
    assert api.get_payments(tenant, where='Invoice.InvoiceNumber=="NO-SUCH"').payments == []
    with pytest.raises(AccountingBadRequestException) as caught:
        api.get_payments(tenant, where='Colour=="red"')
    assert caught.value.error_data["Type"] == "QueryParseException"
    assert "Colour" in caught.value.error_data["Message"]
    assert api.get_payments(tenant, where=on_invoice).pagination is None
    assert api.get_payments(tenant, where=on_invoice, page=1).pagination.item_count == 3
