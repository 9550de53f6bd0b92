"""A whole payment through the proxy, toward a one-invoice backend (a ledger-mode gateway
process speaking Harvest): one allocation is an ordinary backend payment, its own group;
a payment split across invoices is refused before anything is sent. (The requests are
made through the proxy's service: no dialect of this package writes a split payment.)"""

from __future__ import annotations

from decimal import Decimal

import pytest

from dialects import Decoded
from dialects.errors import SplitUnsupported, StaleVersion, Unapplied
from dialects.model import Allocation, Payment
from gateway.ledger.contract import Principal
from gateway.serving.state import GATEWAY

from .conftest import ProxyFactory
from .harness import LedgerBackend, caller_invoice, upstream

WHO = Principal("acme", "harvest", "test")


def _request(lines: dict[int, str], total: str | None = None) -> Decoded:
    fields = {} if total is None else {"amount": Decimal(total)}
    allocations = tuple(Allocation(i, Decimal(a)) for i, a in lines.items())
    return Decoded(Payment(**fields), frozenset(fields), allocations=allocations)


async def test_a_split_is_refused_and_one_allocation_is_a_backend_payment(
    make_proxy: ProxyFactory, backend: LedgerBackend
) -> None:
    proxy = await make_proxy(upstream("harvest", backend.url))
    service = proxy.app[GATEWAY].proxies["acme"]
    one, two = await backend.new_invoice("100.00"), await backend.new_invoice("100.00")
    mine = [await caller_invoice(proxy, "harvest", n) for n in (one, two)]

    with pytest.raises(SplitUnsupported):
        await service.create_group(WHO, _request({mine[0]: "10.00", mine[1]: "20.00"}))
    with pytest.raises(Unapplied):
        await service.create_group(WHO, _request({mine[0]: "10.00"}, "10.01"))
    assert await backend.payments(one) == [] and await backend.payments(two) == []

    (made,) = await service.create_group(WHO, _request({mine[0]: "10.00"}, "10.00"))
    assert made.payment.group_id == made.payment.id and made.payment.version == 0
    (stored,) = await backend.payments(one)
    assert Decimal(stored["amount"]) == Decimal("10.00")
    group = made.payment.id or 0
    with pytest.raises(StaleVersion):
        await service.delete_group(WHO, group, version=3, void=False)
    (gone,) = await service.delete_group(WHO, group, version=0, void=False)
    assert gone.deleted_at is not None
    assert await backend.payments(one) == []
