"""Xero's own Python SDK (xero-python) against a real gateway process, and a Harvest client beside it."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from lxml import etree
from xero_python.accounting import (  # type: ignore[import-untyped]
    Account,
    AccountingApi,
    Invoice,
    Payment,
    PaymentDelete,
    Payments,
)
from xero_python.api_client import ApiClient, Configuration  # type: ignore[import-untyped]
from xero_python.api_client.oauth2 import OAuth2Token, TokenApi  # type: ignore[import-untyped]
from xero_python.exceptions import (  # type: ignore[import-untyped]
    AccountingBadRequestException,
    NotFoundException,
)
from xero_python.identity import IdentityApi  # type: ignore[import-untyped]

from dialects.testing.xero import tenant_id as xero_tenant_id

from ..support import basic
from .server import ADMIN_TOKEN, Server, running, write_config

HARVEST = basic("acme@example.com", "acme-harvest")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("xero-sdk")
    config = write_config(directory)
    with running(config, directory / "sdk.db", directory / "server.log") as started:
        yield started.wait_ready()


@pytest.fixture
def sdk(server: Server, monkeypatch: pytest.MonkeyPatch) -> tuple[AccountingApi, str]:
    """The SDK as a custom connection would use it: a client-credentials token, its tenant.

    The SDK's token endpoint is a class attribute of its TokenApi, and each API takes
    its base URL: both point at the gateway.
    """
    monkeypatch.setattr(TokenApi, "client_credentials_token_url", f"{server.url}/connect/token")
    saved: dict[str, Any] = {}
    api_client = ApiClient(
        Configuration(
            oauth2_token=OAuth2Token(client_id="acme-xero-client", client_secret="acme-xero-secret")
        ),
        pool_threads=1,
        oauth2_token_getter=lambda: saved.get("token"),
        oauth2_token_saver=lambda token: saved.update(token=token),
    )
    api_client.get_client_credentials_token()
    [connection] = IdentityApi(api_client, base_url=server.url).get_connections()
    assert connection.tenant_id == xero_tenant_id("acme")
    return AccountingApi(api_client, base_url=f"{server.url}/api.xro/2.0"), connection.tenant_id


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

    listed = api.get_payments(tenant, where=f'Invoice.InvoiceID==guid("{invoice_id}")').payments
    assert [p.payment_id for p in listed] == [created.payment_id]

    [fetched] = api.get_payment(tenant, created.payment_id).payments
    assert (fetched.reference, fetched.amount) == ("paid by the SDK", 40.25)

    [deleted] = api.delete_payment(
        tenant, created.payment_id, PaymentDelete(status="DELETED")
    ).payments
    assert deleted.status == "DELETED"
    with pytest.raises(NotFoundException):
        api.get_payment(tenant, created.payment_id)
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
