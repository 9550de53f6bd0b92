"""Payments split across invoices, in the ledger over each store: a payment's allocations
are stored all or none, its version moves with every change to any of them, stale
versions, other customers' invoices and unapplied money are refused, and no sequence of
changes makes money appear or disappear."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialects import Decoded
from dialects.errors import (
    CustomerMismatch,
    GatewayError,
    Overpayment,
    StaleVersion,
    Unapplied,
    ValidationFailed,
)
from dialects.model import Allocation, Payment, PaymentQuery
from gateway.ledger.contract import Principal
from gateway.ledger.rules import Ledger
from gateway.store import NewInvoice, Store

pytestmark = pytest.mark.stores
WHO = Principal("acme", "canonical", "tester")
NUMBERS = itertools.count(1)


async def _invoice(store: Store, total: str = "100.00", customer: str | None = None) -> int:
    new = NewInvoice(
        "acme", f"A-{next(NUMBERS)}", "EUR", Decimal(total), date(2026, 1, 1),
        date(2999, 1, 1), customer=customer,
    )  # fmt: skip
    return (await store.create_invoice(new)).id


def _request(
    lines: dict[int, str], total: str | None = None, customer: str | None = None, **more: Any
) -> Decoded:
    fields: dict[str, Any] = {"customer": customer, **more}
    if total is not None:
        fields["amount"] = Decimal(total)
    allocations = tuple(Allocation(i, Decimal(a)) for i, a in lines.items())
    return Decoded(Payment(**fields), frozenset(fields), allocations=allocations)


async def _due(store: Store, invoice_id: int) -> Decimal:
    invoice = await store.invoice("acme", invoice_id)
    assert invoice is not None
    return invoice.due_amount


async def test_a_split_payment_is_one_group_of_allocations(store: Store) -> None:
    ledger = Ledger(store)
    one, two = await _invoice(store), await _invoice(store)
    made = await ledger.create_group(WHO, _request({one: "30.00", two: "45.50"}, "75.50", "C1"))
    first, second = (outcome.payment for outcome in made)
    assert first.group_id == first.id and second.group_id == first.id
    assert (first.version, second.version) == (0, 0)
    assert (first.customer, second.customer) == ("C1", "C1")
    assert (await _due(store, one), await _due(store, two)) == (Decimal(70), Decimal("54.50"))
    group = await ledger.get_group(WHO, first.id or 0)
    assert [(p.invoice_id, p.amount) for p in group] == [(one, 30), (two, Decimal("45.50"))]
    single = await ledger.create_group(WHO, _request({one: "1.00"}))
    assert single[0].payment.group_id == single[0].payment.id


async def test_allocations_are_stored_all_or_none(store: Store) -> None:
    ledger = Ledger(store)
    one, two = await _invoice(store), await _invoice(store, "20.00")
    with pytest.raises(Overpayment):
        await ledger.create_group(WHO, _request({one: "30.00", two: "20.01"}))
    assert (await _due(store, one), await _due(store, two)) == (Decimal(100), Decimal(20))
    assert await store.payments("acme", [one, two], deleted=True) == []


async def test_unapplied_money_is_refused_and_a_short_total_too(store: Store) -> None:
    ledger = Ledger(store)
    one, two = await _invoice(store), await _invoice(store)
    with pytest.raises(Unapplied):
        await ledger.create_group(WHO, _request({one: "30.00", two: "20.00"}, "50.01"))
    with pytest.raises(ValidationFailed):
        await ledger.create_group(WHO, _request({one: "30.00", two: "20.00"}, "49.99"))
    twice = _request({one: "30.00"}, "31.00")
    twice = dataclasses.replace(twice, allocations=twice.allocations * 2)
    with pytest.raises(ValidationFailed):
        await ledger.create_group(WHO, twice)
    assert await store.payments("acme", [one, two], deleted=True) == []


async def test_a_payment_for_another_customers_invoice_is_refused(store: Store) -> None:
    ledger = Ledger(store)
    mine, theirs = await _invoice(store, customer="C1"), await _invoice(store, customer="C2")
    anyone = await _invoice(store)
    with pytest.raises(CustomerMismatch):
        await ledger.create_group(WHO, _request({mine: "1.00", theirs: "1.00"}, customer="C1"))
    made = await ledger.create_group(WHO, _request({mine: "1.00", anyone: "1.00"}, customer="C1"))
    assert len(made) == 2
    assert await _due(store, theirs) == 100
    group = made[0].payment.group_id or 0
    with pytest.raises(CustomerMismatch):
        await ledger.update_group(
            WHO, group, _request({}, customer="C2"), replace=False, version=None
        )


async def test_every_change_moves_the_whole_group_to_its_next_version(store: Store) -> None:
    ledger = Ledger(store)
    one, two, three = [await _invoice(store) for _ in range(3)]
    made = await ledger.create_group(WHO, _request({one: "10.00", two: "20.00"}))
    group = made[0].payment.group_id or 0
    # Lines changed, one added and one dropped: one transaction, one new version.
    after = await ledger.update_group(
        WHO, group, _request({two: "25.00", three: "5.00"}, "30.00"), replace=False, version=0
    )
    assert [(p.invoice_id, p.amount, p.version) for p in (o.payment for o in after)] == [
        (two, Decimal(25), 1),
        (three, Decimal(5), 1),
    ]
    assert [await _due(store, i) for i in (one, two, three)] == [100, 75, 95]
    with pytest.raises(StaleVersion):
        await ledger.update_group(WHO, group, _request({}), replace=False, version=0)
    # One allocation changed alone (as a one-invoice dialect does): the group moves on.
    part = after[0].payment.id or 0
    await ledger.update_payment(WHO, part, _request({}, "24.00"), replace=False, version=1)
    assert {p.version for p in await ledger.get_group(WHO, group)} == {2}
    with pytest.raises(StaleVersion):
        await ledger.delete_payment(WHO, part, version=1)
    # One allocation deleted alone: the group shrinks, what is left moves on.
    await ledger.delete_payment(WHO, part, version=2)
    left = await ledger.get_group(WHO, group)
    assert [(p.invoice_id, p.version) for p in left] == [(three, 3)]
    assert group in {p.group_id for p in left}
    with pytest.raises(StaleVersion):
        await ledger.delete_group(WHO, group, version=2, void=True)


async def test_a_void_deletes_every_allocation_and_remembers_it(store: Store) -> None:
    ledger = Ledger(store)
    one, two = await _invoice(store), await _invoice(store)
    made = await ledger.create_group(WHO, _request({one: "10.00", two: "20.00"}, customer="C"))
    group = made[0].payment.group_id or 0
    voided = await ledger.delete_group(WHO, group, version=0, void=True)
    assert [(p.voided, p.version, p.deleted_at is not None) for p in voided] == [
        (True, 1, True),
        (True, 1, True),
    ]
    assert (await _due(store, one), await _due(store, two)) == (Decimal(100), Decimal(100))
    with pytest.raises(GatewayError):
        await ledger.get_group(WHO, group)
    listed, _ = await ledger.search_payments(WHO, PaymentQuery(group_ids=(group,)))
    assert listed == []
    listed, _ = await ledger.search_payments(WHO, PaymentQuery(group_ids=(group,), voided=True))
    assert [p.voided for p in listed] == [True, True]
    found, _ = await ledger.search_payments(WHO, PaymentQuery(customers=("C",), voided=True))
    assert {p.group_id for p in found} == {group}


# --- money never appears or disappears ------------------------------------------------------

AMOUNT = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("40"), places=2)
LINES = st.dictionaries(st.integers(0, 3), AMOUNT, min_size=1, max_size=3)
OPS = st.one_of(
    st.tuples(st.just("create"), LINES),
    st.tuples(st.just("update"), st.integers(0, 9), LINES),
    st.tuples(st.just("delete"), st.integers(0, 9), st.booleans()),
    st.tuples(st.just("delete_one"), st.integers(0, 9), st.integers(0, 2)),
    st.tuples(st.just("update_one"), st.integers(0, 9), st.integers(0, 2), AMOUNT),
)


async def _check_money(store: Store, invoices: list[int]) -> None:
    """Each invoice's stored due amount is its total less its live allocations, and each
    group's live allocations share one version."""
    for invoice_id in invoices:
        invoice = await store.invoice("acme", invoice_id, with_payments=True)
        assert invoice is not None
        live = sum((p.settled for p in invoice.payments), Decimal(0))
        assert invoice.due_amount == invoice.total - live
        assert invoice.payment_count == len(invoice.payments)
    versions: dict[int | None, set[int]] = {}
    for payment in await store.payments("acme", invoices):
        versions.setdefault(payment.group_id, set()).add(payment.version)
    assert all(len(held) == 1 for held in versions.values()), versions


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(OPS, min_size=1, max_size=12))
async def test_money_never_appears_or_disappears(store: Store, ops: list[tuple[Any, ...]]) -> None:
    ledger = Ledger(store)
    invoices = [await _invoice(store) for _ in range(4)]
    groups: list[int] = []

    def lines(picked: dict[int, Decimal]) -> dict[int, str]:
        return {invoices[i]: str(amount) for i, amount in picked.items()}

    for op, *args in ops:
        try:
            if op == "create":
                made = await ledger.create_group(WHO, _request(lines(args[0])))
                groups.append(made[0].payment.group_id or 0)
            elif not groups:
                continue
            elif op == "update":
                group = groups[args[0] % len(groups)]
                await ledger.update_group(
                    WHO, group, _request(lines(args[1])), replace=False, version=None
                )
            elif op == "delete":
                group = groups[args[0] % len(groups)]
                await ledger.delete_group(WHO, group, version=None, void=args[1])
            else:
                group = groups[args[0] % len(groups)]
                held = await ledger.get_group(WHO, group)
                part = held[args[1] % len(held)].id or 0
                if op == "delete_one":
                    await ledger.delete_payment(WHO, part)
                else:
                    amount = str(args[2])
                    await ledger.update_payment(WHO, part, _request({}, amount), replace=False)
        except GatewayError:
            pass  # a refusal (more than is due, a group gone) changes nothing
        await _check_money(store, invoices)


async def test_two_parts_changed_at_once_from_one_version_one_is_stale(store: Store) -> None:
    ledger = Ledger(store)
    one, two = await _invoice(store), await _invoice(store)
    made = await ledger.create_group(WHO, _request({one: "10.00", two: "20.00"}))
    parts = [outcome.payment.id or 0 for outcome in made]
    changes = [
        ledger.update_payment(WHO, part, _request({}, "5.00"), replace=False, version=0)
        for part in parts
    ]
    done = await asyncio.gather(*changes, return_exceptions=True)
    assert sorted(type(outcome).__name__ for outcome in done) == ["Outcome", "StaleVersion"]
    group = await ledger.get_group(WHO, parts[0])
    assert [p.version for p in group] == [1, 1]
    amounts = sorted(p.amount or Decimal(0) for p in group)
    assert amounts in ([Decimal(5), Decimal(20)], [Decimal(5), Decimal(10)])


async def test_a_search_selects_by_customer_reference_and_group(store: Store) -> None:
    ledger = Ledger(store)
    one, two = await _invoice(store), await _invoice(store)
    a = await ledger.create_group(
        WHO, _request({one: "1.00", two: "2.00"}, None, "CA", reference="R1")
    )
    b = await ledger.create_group(WHO, _request({one: "3.00"}, None, "CB", reference="R2"))
    group_a, group_b = a[0].payment.group_id, b[0].payment.group_id

    async def ids(**asked: Any) -> list[int | None]:
        found, _ = await ledger.search_payments(WHO, PaymentQuery(**asked))
        return [p.id for p in found if p.invoice_id in (one, two)]

    assert await ids(customers=("CA",)) == [p.payment.id for p in a]
    assert await ids(references=("R2",)) == [b[0].payment.id]
    assert await ids(group_ids=(group_b,), customers=("CA",)) == []
    assert await ids(group_ids=(group_a, group_b)) == [*(p.payment.id for p in a), b[0].payment.id]
