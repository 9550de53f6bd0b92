"""A QuickBooks client through the proxy in front of a one-invoice backend (a ledger-mode
gateway process speaking Harvest), over HTTP: a payment on one invoice is an ordinary
backend payment, one split across two is refused with QuickBooks' business validation
fault before anything is sent."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from dialects.testing.quickbooks import CUSTOMER, realm_id

from ..clients import CLIENTS
from .conftest import ProxyFactory
from .harness import LedgerBackend, caller_invoice, upstream

pytestmark = pytest.mark.stores

PAYMENTS = f"/v3/company/{realm_id('acme')}/payment"


def payment(lines: dict[int, str]) -> bytes:
    total = sum(Decimal(amount) for amount in lines.values())
    document = {
        "CustomerRef": {"value": CUSTOMER},
        "TxnDate": "2026-11-20",
        "TotalAmt": str(total),
        "Line": [
            {"Amount": amount, "LinkedTxn": [{"TxnId": str(invoice), "TxnType": "Invoice"}]}
            for invoice, amount in lines.items()
        ],
    }
    return json.dumps(document).encode()


async def test_a_split_is_refused_and_one_line_is_a_backend_payment(
    make_proxy: ProxyFactory, backend: LedgerBackend
) -> None:
    proxy = await make_proxy(upstream("harvest", backend.url))
    client = CLIENTS["quickbooks"](proxy)
    one, two = await backend.new_invoice("100.00"), await backend.new_invoice("100.00")
    first, second = [await caller_invoice(proxy, "quickbooks", n) for n in (one, two)]
    headers = {"Content-Type": "application/json"}

    split = await client.call("POST", PAYMENTS, payment({first: "10", second: "20"}), headers)

    assert split.status == 400, split.body
    (error,) = split.json()["Fault"]["Error"]
    assert error["code"] == "6000" and "several invoices" in error["Detail"]
    assert await backend.payments(one) == [] and await backend.payments(two) == []

    made = await client.call("POST", PAYMENTS, payment({first: "10"}), headers)

    assert made.status == 200, made.body
    shown = made.json()["Payment"]
    assert (shown["TotalAmt"], shown["SyncToken"]) == (10.0, "0")
    (stored,) = await backend.payments(one)
    assert Decimal(stored["amount"]) == Decimal("10.00")
    removal = json.dumps({"Id": shown["Id"], "SyncToken": "0"}).encode()
    deleted = await client.call("POST", PAYMENTS + "?operation=delete", removal, headers)
    assert deleted.status == 200, deleted.body
    assert deleted.json()["Payment"]["status"] == "Deleted"
    assert await backend.payments(one) == []
