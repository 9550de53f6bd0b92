"""Every caller dialect against every backend dialect, the backend a real ledger process.

Each case records a payment through the proxy in the caller's wire format, checks
what the backend's ledger now holds (through the backend's own admin API), reads it
back by list and by id, changes it where both sides can, and deletes it where both
sides can; where the backend cannot, the caller gets 501 and the backend is untouched.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

import dialects
from dialects import testing

from ..clients import CLIENTS, Reply, View
from ..conftest import Client
from ..registry import answers_xml, deletes, names, speaks_json
from ..support import basic
from .conftest import ProxyFactory
from .harness import DIALECTS, LedgerBackend, backend_id, caller_invoice, held, upstream

pytestmark = pytest.mark.stores

# The method each caller's client sends (tests.clients), as the backend stores it.
STORED_METHOD: dict[tuple[str, str], tuple[str | None, str | None]] = {
    # (caller, backend): (canonical method, origin) in the backend's ledger
    ("harvest", "fastbill"): (None, None),
    ("fastbill", "fastbill"): ("bank_transfer", "fastbill"),
    ("invoiless", "fastbill"): ("bank_transfer", "fastbill"),
    ("urlkey", "fastbill"): ("other", "fastbill"),  # UPI is MISC in FastBill
    ("harvest", "invoiless"): ("other", "invoiless"),  # required there: sent as Other
    ("fastbill", "invoiless"): ("bank_transfer", "invoiless"),
    ("invoiless", "invoiless"): ("bank_transfer", "invoiless"),
    ("urlkey", "invoiless"): ("other", "invoiless"),  # UPI is Other in Invoiless
    ("harvest", "urlkey"): (None, None),
    ("fastbill", "urlkey"): ("bank_transfer", "urlkey"),
    ("invoiless", "urlkey"): ("bank_transfer", "urlkey"),
    ("urlkey", "urlkey"): ("upi", "urlkey"),
}
# The dialects whose pairs the tables here pin, read off the table itself; a pair with
# any other dialect (one installed as a plug-in, say) has the method held to what the
# caller sent or a method the backend took, warnings unchecked.
TABLED = frozenset(dialect for pair in STORED_METHOD for dialect in pair)
# Harvest has no payment method at all.
STORED_METHOD.update({(caller, "harvest"): (None, None) for caller in DIALECTS})

# Warnings name the field as the caller does (FastBill's `type`, urlKey's `paymentMethod`).
DROPPED = "{} has no place in the harvest backend and was dropped"
NO_URLKEY_WORD = "method other has no urlkey equivalent; sent as no method"
WARNINGS: dict[tuple[str, str], str] = {
    ("fastbill", "harvest"): DROPPED.format("type"),
    ("invoiless", "harvest"): DROPPED.format("method"),
    ("urlkey", "harvest"): DROPPED.format("paymentMethod"),
    ("harvest", "invoiless"): "method is required by the invoiless backend; sent as other",
    # UPI came back from the backend as other, which urlKey has no word for.
    ("urlkey", "fastbill"): NO_URLKEY_WORD,
    ("urlkey", "invoiless"): NO_URLKEY_WORD,
}


def backend_payment(
    caller: str, backend_dialect: str, *, amount: str, notes: str | None, paid_at: str
) -> dict[str, Any]:
    method, origin = STORED_METHOD.get((caller, backend_dialect), (None, None))
    recorded_by, client_app = testing.support(backend_dialect).recorded("acme")
    return {
        "tenant": "acme",
        "amount": Decimal(amount),
        "paid_at": paid_at,
        "method": method,
        "origin": origin,
        "notes": notes,
        "reference": None,
        "tax_withheld": Decimal(0),
        "fee": Decimal(0),
        "recorded_by": recorded_by,
        "client_app": client_app,
        "notify_customer": False,
    }


def not_supported(caller: str, reply: Reply, message: str) -> None:
    """501 in the caller's own error shape."""
    text = testing.support(caller).error(reply.answer(), 501, "not_supported")
    assert text == message


async def update_as_invoiless(
    proxy: Client,
    backend: LedgerBackend,
    backend_dialect: str,
    number: int,
    payment: int,
    before: list[dict[str, Any]],
) -> None:
    """PATCH and PUT, the two changes only Invoiless has, as an Invoiless caller."""
    client = CLIENTS["invoiless"](proxy)
    json_type = {"Content-Type": "application/json"}
    replacement = b'{"amount": 300.25, "method": "Cash", "paidAt": "2026-11-21"}'
    patched = await client.call(
        "PATCH", f"/v1/payments/{payment}", b'{"notes": "patched"}', json_type
    )
    if backend_dialect != "invoiless":
        replaced = await client.call("PUT", f"/v1/payments/{payment}", replacement, json_type)
        message = f"The {backend_dialect} backend cannot change a payment"
        not_supported("invoiless", patched, message)
        not_supported("invoiless", replaced, message)
        assert await backend.payments(number) == before  # never a silent success
        return
    assert patched.status == 200, patched.body
    assert patched.json()["notes"] == "patched"
    assert patched.json()["amount"] == 250.5
    assert [held(p)["notes"] for p in await backend.payments(number)] == ["patched"]
    replaced = await client.call("PUT", f"/v1/payments/{payment}", replacement, json_type)
    assert replaced.status == 200, replaced.body
    assert replaced.json() == {
        "id": str(payment),
        "invoice": patched.json()["invoice"],
        "amount": 300.25,
        "method": "Cash",
        "paidAt": "2026-11-21",
        "notes": None,  # PUT replaces the whole record: notes left out are reset
        "sendNotification": False,
    }
    stored = await backend.payments(number)
    assert [held(p) for p in stored] == [
        {
            **backend_payment(
                "invoiless",
                "invoiless",
                amount="300.25",
                notes=None,
                paid_at="2026-11-21T00:00:00Z",
            ),
            "method": "cash",
        }
    ]
    assert (await backend.invoice(number))["due_amount"] == "699.75"


@pytest.mark.parametrize("backend_dialect", DIALECTS)
@pytest.mark.parametrize("caller", DIALECTS)
async def test_payment_lives_at_the_backend_through_every_operation_both_dialects_have(
    caller: str, backend_dialect: str, backend: LedgerBackend, make_proxy: ProxyFactory
) -> None:
    proxy = await make_proxy(upstream(backend_dialect, backend.url))
    number = await backend.new_invoice("1000.00")
    invoice = await caller_invoice(proxy, backend_dialect, number)
    client = CLIENTS[caller](proxy)
    notes = f"{caller} caller, {backend_dialect} backend"

    created, payment = await client.create(invoice, "250.50", notes=notes)

    assert created.status == testing.support(caller).create_status, created.body
    assert invoice == number  # the backend's own invoice number, in the caller's form
    assert payment is not None
    known = caller in TABLED and backend_dialect in TABLED
    if known:
        warned = WARNINGS.get((caller, backend_dialect))
        assert created.headers.get("X-Gateway-Warnings") == warned
    caller_support = testing.support(caller)
    location = caller_support.location(invoice, payment)
    assert created.headers.get("Location") == location
    # The backend's ledger holds exactly what was sent, recorded with the proxy's credential.
    stored = await backend.payments(number)
    expected = backend_payment(
        caller, backend_dialect, amount="250.50", notes=notes, paid_at="2026-11-20T00:00:00Z"
    )
    if not known:
        sent = caller_support.method
        assert len(stored) == 1 and stored[0]["method"] in (sent, "other", None), stored
        expected.update(method=stored[0]["method"], origin=stored[0]["origin"])
    assert [held(p) for p in stored] == [expected]
    assert (await backend.invoice(number))["due_amount"] == "749.50"
    assert payment == stored[0]["id"]  # the backend's own payment number too
    backend_payment_id = dialects.get(backend_dialect).wire_id(stored[0]["id"])
    assert await backend_id(proxy, backend_dialect, "payment", payment) == str(backend_payment_id)

    view: View = {
        "id": payment,
        "amount": Decimal("250.5"),
        "notes": notes,
        "paid_on": "2026-11-20",
    }
    assert await client.list(invoice) == [view]
    assert await client.get(invoice, payment) == view

    if caller == "invoiless" and backend_dialect in TABLED:
        await update_as_invoiless(proxy, backend, backend_dialect, number, payment, stored)

    if caller_support.deleted_status is None:
        return  # callers of a dialect without delete
    before = await backend.payments(number)
    deleted = await client.delete(invoice, payment)
    backend_unit = dialects.unit(backend_dialect)
    if not deletes(backend_unit):
        message = f"The {backend_dialect} backend cannot delete a payment"
        not_supported(caller, deleted, message)
        assert await backend.payments(number) == before
        return
    assert deleted.status == caller_support.deleted_status, deleted.body
    assert (deleted.body == b"") == caller_support.deleted_empty
    assert await backend.payments(number) == []
    assert (await backend.invoice(number))["due_amount"] == "1000.00"
    assert await client.list(invoice) == []
    assert await client.get(invoice, payment) is None


async def test_grid_list_shows_payments_recorded_directly_at_the_backend(
    backend: LedgerBackend, make_proxy: ProxyFactory
) -> None:
    """A payment the backend got from elsewhere is listed with a caller id of its own."""
    proxy = await make_proxy(upstream("fastbill", backend.url))
    number = await backend.new_invoice("500.00")
    invoice = await caller_invoice(proxy, "fastbill", number)
    direct = await CLIENTS["fastbill"](proxy).create(invoice, "20.00")
    assert direct[0].status == 201

    # Through the backend's own harvest surface, not through the proxy.
    body = (
        b'<payment><paid-at type="datetime">2026-11-22T00:00:00Z</paid-at>'
        b'<amount type="decimal">30.00</amount><notes>at the backend</notes></payment>'
    )
    async with backend.session.post(
        f"{backend.url}/invoices/{number}/payments",
        data=body,
        headers={**basic("acme@example.com", "acme-harvest"), "Content-Type": "application/xml"},
    ) as response:
        assert response.status == 201

    listed = await CLIENTS["invoiless"](proxy).list(invoice)

    assert [(item["amount"], item["notes"]) for item in listed] == [
        (Decimal("20"), None),
        (Decimal("30"), "at the backend"),
    ]
    assert listed[0]["id"] == direct[1]
    assert listed[1]["id"] not in (invoice, direct[1])
    again = await CLIENTS["harvest"](proxy).get(invoice, listed[1]["id"])
    assert again == {**listed[1], "paid_on": "2026-11-22"}


@pytest.mark.parametrize("backend_dialect", names(answers_xml, speaks_json))
async def test_an_xml_backend_spoken_to_in_json_serves_every_operation(
    backend_dialect: str, backend: LedgerBackend, make_proxy: ProxyFactory
) -> None:
    proxy = await make_proxy(upstream(backend_dialect, backend.url, format="json"))
    number = await backend.new_invoice("1000.00")
    invoice = await caller_invoice(proxy, backend_dialect, number)
    client = CLIENTS["urlkey"](proxy)

    created, payment = await client.create(invoice, "99.99", notes="as JSON")
    listed = await CLIENTS["fastbill"](proxy).list(invoice)
    deleted = await CLIENTS["invoiless"](proxy).delete(invoice, payment or 0)

    assert created.status == 201, created.body
    view: View = {"id": payment, "amount": Decimal("99.99"), "notes": "as JSON"}
    assert listed == [{**view, "paid_on": "2026-11-20"}]
    assert deleted.status == 204, deleted.body
    assert await backend.payments(number) == []


async def test_through_the_proxy_an_answer_tells_nothing_of_the_backends_invoice(
    backend: LedgerBackend, make_proxy: ProxyFactory
) -> None:
    """The invoices are the backend's: a dialect that shows invoice facts shows none."""
    proxy = await make_proxy(upstream("harvest", backend.url))
    number = await backend.new_invoice("1000.00")
    for caller in (name for name in DIALECTS if dialects.get(name).shows_facts):
        invoice = await caller_invoice(proxy, "harvest", number)
        client = CLIENTS[caller](proxy)
        created, payment = await client.create(invoice, "250.50")
        assert payment is not None, created.body
        view: View = {"id": payment, "amount": Decimal("250.5"), "paid_on": "2026-11-20"}
        assert await client.get(invoice, payment) == {**view, "notes": None}
        assert b"AmountDue" not in created.body and b"InvoiceNumber" not in created.body
