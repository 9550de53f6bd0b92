"""What crosses the translation: backend errors in the caller's shape and field names,
values the backend cannot carry (warned, refused under strict, money always refused),
and operations the backend lacks. The backend is a real ledger-mode process.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

import dialects

from ..clients import CLIENTS, Reply
from ..http.wire import json_body, pay, urlkey_path, xml_body
from ..registry import names
from .conftest import ProxyFactory
from .harness import LedgerBackend, caller_invoice, held, upstream

# urlKey's money besides the amount, by wire name, and what the canonical model calls it.
MONEY = {"tds": "tax_withheld", "transactionCharge": "fee"}


def holds(attr: str) -> list[str]:
    """The registered dialects whose wire form has a place for `attr`."""
    return names(lambda unit: any(spec.attr == attr for spec in dialects.get(unit.name).fields))


def without(attr: str) -> list[str]:
    return [name for name in names() if name not in holds(attr)]


pytestmark = pytest.mark.stores

LONG_NOTES = "n" * 501  # Invoiless keeps at most 500 characters of notes


async def record_with_notes(proxy: Any, caller: str, invoice: int, notes: str) -> Reply:
    client = CLIENTS[caller](proxy)
    reply, _ = await client.create(invoice, "10.00", notes=notes)
    return reply


@pytest.mark.parametrize(
    ("caller", "status", "expected"),
    [
        ("harvest", 422, ["Notes is too long (maximum is 500 characters)"]),
        ("fastbill", 422, ["Comment is too long (maximum is 500 characters)"]),
        (
            "urlkey",
            400,
            {
                "name": "BadRequest",
                "message": "Validation failed",
                "code": 400,
                "className": "bad-request",
                "data": {"message": "Validation failed"},
                "errors": {"notes": "is too long (maximum is 500 characters)"},
            },
        ),
    ],
)
async def test_backend_field_error_reaches_the_caller_in_its_shape_with_its_field_names(
    caller: str,
    status: int,
    expected: Any,
    backend: LedgerBackend,
    make_proxy: ProxyFactory,
) -> None:
    proxy = await make_proxy(upstream("invoiless", backend.url))
    number = await backend.new_invoice()
    invoice = await caller_invoice(proxy, "invoiless", number)

    reply = await record_with_notes(proxy, caller, invoice, LONG_NOTES)

    assert reply.status == status, reply.body
    if caller == "urlkey":
        assert reply.json() == expected
    else:
        assert [child.text for child in reply.xml()] == expected
    assert await backend.payments(number) == []


@pytest.mark.parametrize(
    ("caller", "backend_dialect"),
    [
        ("invoiless", "fastbill"),
        ("urlkey", "harvest"),
        ("harvest", "urlkey"),
        ("fastbill", "invoiless"),
    ],
)
async def test_overpayment_refused_by_the_backend_is_422_in_the_callers_shape(
    caller: str, backend_dialect: str, backend: LedgerBackend, make_proxy: ProxyFactory
) -> None:
    proxy = await make_proxy(upstream(backend_dialect, backend.url))
    number = await backend.new_invoice("100.00")
    invoice = await caller_invoice(proxy, backend_dialect, number)

    reply = await pay(proxy, caller, invoice, "100.01")

    assert reply.status == 422, reply.body
    problem = "exceeds the amount due (100.00)"
    if caller in ("harvest", "fastbill"):
        assert [child.text for child in reply.xml()] == [f"Amount {problem}"]
    elif caller == "invoiless":
        body = reply.json()["error"]
        assert (body["code"], body["fields"]) == ("ledger", {"amount": problem})
    else:
        body = reply.json()
        assert (body["name"], body["className"], body["errors"]) == (
            "Unprocessable",
            "unprocessable",
            {"amount": problem},
        )
    assert await backend.payments(number) == []
    assert (await backend.invoice(number))["due_amount"] == "100.00"


async def test_value_the_backend_must_have_is_sent_as_its_fallback_with_a_warning(
    backend: LedgerBackend, make_proxy: ProxyFactory
) -> None:
    """Invoiless requires a method; Harvest has none: sent as Other, and the caller told."""
    proxy = await make_proxy(upstream("invoiless", backend.url))
    number = await backend.new_invoice()
    invoice = await caller_invoice(proxy, "invoiless", number)

    reply = await pay(proxy, "harvest", invoice, "40.00")

    assert reply.status == 201, reply.body
    assert reply.headers["X-Gateway-Warnings"] == (
        "method is required by the invoiless backend; sent as other"
    )
    assert [(held(p)["method"], held(p)["origin"]) for p in await backend.payments(number)] == [
        ("other", "invoiless")
    ]


async def test_strict_backend_refuses_what_it_cannot_carry_with_422(
    backend: LedgerBackend, make_proxy: ProxyFactory
) -> None:
    proxy = await make_proxy(upstream("invoiless", backend.url, strict=True))
    number = await backend.new_invoice()
    invoice = await caller_invoice(proxy, "invoiless", number)

    reply = await pay(proxy, "harvest", invoice, "40.00")

    assert reply.status == 422, reply.body
    assert "X-Gateway-Warnings" not in reply.headers
    assert [child.text for child in reply.xml()] == [
        "Method is required by the invoiless backend (strict translation)"
    ]
    assert await backend.payments(number) == []


async def test_strict_backend_refuses_a_dropped_field_in_the_callers_field_names(
    backend: LedgerBackend, make_proxy: ProxyFactory
) -> None:
    """urlKey's refId has no place in Harvest: refused under strict, named as urlKey does."""
    proxy = await make_proxy(upstream("harvest", backend.url, strict=True))
    number = await backend.new_invoice()
    invoice = await caller_invoice(proxy, "harvest", number)
    body = json_body(
        {"amount": Decimal("5"), "paymentDate": "2026-11-20T00:00:00.000Z", "refId": "R-1"}
    )

    reply = await CLIENTS["urlkey"](proxy).call(
        "POST", urlkey_path(invoice), body, {"Content-Type": "application/json"}
    )

    assert reply.status == 422, reply.body
    assert reply.json()["errors"] == {
        "refId": "has no place in the harvest backend (strict translation)"
    }
    assert await backend.payments(number) == []


@pytest.mark.parametrize(
    ("money", "backend_dialect"),
    [(money, backend) for money, attr in MONEY.items() for backend in without(attr)],
)
async def test_tax_withheld_or_fee_against_a_backend_without_them_is_refused_with_422(
    money: str, backend_dialect: str, backend: LedgerBackend, make_proxy: ProxyFactory
) -> None:
    proxy = await make_proxy(upstream(backend_dialect, backend.url))
    number = await backend.new_invoice()
    invoice = await caller_invoice(proxy, backend_dialect, number)

    reply = await pay(proxy, "urlkey", invoice, "90.00", **{money: "10.00"})

    assert reply.status == 422, reply.body
    assert reply.json()["name"] == "Unprocessable"
    assert reply.json()["errors"] == {
        money: f"has no place in the {backend_dialect} backend; refused so no money is lost"
    }
    assert await backend.payments(number) == []


async def test_tax_withheld_reaches_a_urlkey_backend(
    backend: LedgerBackend, make_proxy: ProxyFactory
) -> None:
    proxy = await make_proxy(upstream("urlkey", backend.url))
    number = await backend.new_invoice()
    invoice = await caller_invoice(proxy, "urlkey", number)

    reply = await pay(proxy, "urlkey", invoice, "90.00", tds="10.00")

    assert reply.status == 201, reply.body
    assert (reply.json()["amount"], reply.json()["tds"]) == (90, 10)
    stored = [held(p) for p in await backend.payments(number)]
    assert [(p["amount"], p["tax_withheld"]) for p in stored] == [
        (Decimal("90.00"), Decimal("10.00"))
    ]
    assert (await backend.invoice(number))["due_amount"] == "900.00"


async def test_invoiless_patch_against_a_harvest_backend_is_501_and_changes_nothing(
    backend: LedgerBackend, make_proxy: ProxyFactory
) -> None:
    proxy = await make_proxy(upstream("harvest", backend.url))
    number = await backend.new_invoice()
    invoice = await caller_invoice(proxy, "harvest", number)
    client = CLIENTS["invoiless"](proxy)
    _, payment = await client.create(invoice, "10.00", notes="before")
    before = await backend.payments(number)

    reply = await client.call(
        "PATCH",
        f"/v1/payments/{payment}",
        b'{"notes": "after"}',
        {"Content-Type": "application/json"},
    )

    assert reply.status == 501
    assert reply.json() == {
        "error": {
            "code": "not_supported",
            "message": "The harvest backend cannot change a payment",
        }
    }
    assert await backend.payments(number) == before
    assert [held(p)["notes"] for p in before] == ["before"]


async def test_delete_against_a_urlkey_backend_is_501_and_the_payment_stays(
    backend: LedgerBackend, make_proxy: ProxyFactory
) -> None:
    proxy = await make_proxy(upstream("urlkey", backend.url))
    number = await backend.new_invoice()
    invoice = await caller_invoice(proxy, "urlkey", number)
    created = await pay(proxy, "fastbill", invoice, "10.00")
    payment = int(created.xml().findtext("id") or 0)

    reply = await CLIENTS["fastbill"](proxy).call("DELETE", f"/api/invoice-payments/{payment}.json")

    assert reply.status == 501
    assert reply.headers["Content-Type"] == "application/json; charset=utf-8"
    assert reply.json() == {"errors": ["The urlkey backend cannot delete a payment"]}
    assert [held(p)["amount"] for p in await backend.payments(number)] == [Decimal("10.00")]


async def test_fastbill_caller_with_a_type_urlkey_lacks_is_warned_once(
    backend: LedgerBackend, make_proxy: ProxyFactory
) -> None:
    proxy = await make_proxy(upstream("urlkey", backend.url))
    number = await backend.new_invoice()
    invoice = await caller_invoice(proxy, "urlkey", number)
    body = xml_body(
        "invoice-payment",
        {"invoice_id": str(invoice), "amount": "10.00", "date": "2026-11-20", "type": "COUPON"},
    )

    reply = await CLIENTS["fastbill"](proxy).call(
        "POST", "/api/invoice-payments", body, {"Content-Type": "application/xml"}
    )

    assert reply.status == 201, reply.body
    assert reply.headers["X-Gateway-Warnings"] == (
        "method coupon has no urlkey equivalent; sent as no method"
    )
    shown = reply.xml().find("type")
    assert shown is not None and shown.get("nil") == "true"
    assert [held(p)["method"] for p in await backend.payments(number)] == [None]
