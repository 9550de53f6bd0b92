"""Idempotency keys in the store: claims, leases, takeover, atomic completion, purging."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from dialects import Reply
from dialects.errors import Conflict
from dialects.model import Invoice, InvoiceFacts, Payment
from gateway.config import Idempotency
from gateway.ledger.idempotency import Keys
from gateway.store import Change, KeyClaim, KeyState, NewInvoice, Seal, Store, Written, only

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)
TTL = timedelta(hours=24)
pytestmark = pytest.mark.stores  # the conftest's `store`: SQLite, then PostgreSQL


def claim(key: str, owner: str, *, at: datetime = T0, fingerprint: str = "fp-1") -> KeyClaim:
    return KeyClaim("acme", key, fingerprint, owner, at, at + LEASE, at + TTL)


def record_payment(invoice: Invoice, current: Payment | None) -> Change:
    payment = Payment(
        tenant=invoice.tenant,
        invoice_id=invoice.id,
        amount=Decimal("10.00"),
        paid_at=datetime(2026, 11, 20, tzinfo=UTC),
    )
    return Change(marked_paid=False, upsert=payment)


def answer_with_id(
    written: Sequence[Written], warnings: tuple[str, ...], invoices: Mapping[int, InvoiceFacts]
) -> Reply:
    payment = only(written)
    assert payment is not None and payment.invoice_id is not None
    due = invoices[payment.invoice_id].due
    return Reply(201, f"payment {payment.id} due {due}".encode(), {"Location": f"/p/{payment.id}"})


async def new_invoice(store: Store) -> Invoice:
    return await store.create_invoice(
        NewInvoice("acme", "INV-1", "EUR", Decimal("100.00"), date(2026, 1, 1), date(2999, 1, 1))
    )


async def payments(store: Store, invoice: Invoice) -> int:
    found = await store.invoice("acme", invoice.id)
    assert found is not None
    return found.payment_count


async def test_a_free_key_is_claimed_and_then_held_against_other_claims(store: Store) -> None:
    assert await store.claim_key(claim("k", "first")) is None
    held = await store.claim_key(claim("k", "second", at=T0 + timedelta(seconds=1)))
    assert held is not None
    assert (held.owner, held.state, held.fingerprint) == ("first", KeyState.PENDING, "fp-1")
    assert (held.lease_until, held.expires_at) == (T0 + LEASE, T0 + TTL)
    other = await store.claim_key(claim("k", "third", fingerprint="fp-2"))
    assert other is not None and other.owner == "first"


async def test_the_effect_and_its_answer_are_stored_in_one_transaction(store: Store) -> None:
    invoice = await new_invoice(store)
    assert await store.claim_key(claim("k", "me")) is None
    seal = Seal("acme", "k", "me", answer_with_id)
    stored = await store.apply("acme", invoice.id, record_payment, seal=seal)
    assert stored is not None
    record = await store.key_record("acme", "k")
    assert record is not None and record.state is KeyState.DONE
    # The answer tells of the invoice as the payment left it, in the same transaction.
    body = f"payment {stored.id} due 90.00".encode()
    expected = Reply(201, body, {"Location": f"/p/{stored.id}"})
    assert record.answer == seal.sealed == expected


async def test_an_answer_that_cannot_be_stored_undoes_the_effect(store: Store) -> None:
    invoice = await new_invoice(store)
    assert await store.claim_key(claim("k", "me")) is None

    def broken(
        written: Sequence[Written], warnings: tuple[str, ...], invoices: Mapping[int, InvoiceFacts]
    ) -> Reply:
        raise RuntimeError("the answer could not be encoded")

    with pytest.raises(RuntimeError):
        await store.apply("acme", invoice.id, record_payment, seal=Seal("acme", "k", "me", broken))
    assert await payments(store, invoice) == 0
    record = await store.key_record("acme", "k")
    assert record is not None and record.state is KeyState.PENDING


async def test_a_dead_owners_reservation_is_taken_over_after_its_lease(store: Store) -> None:
    invoice = await new_invoice(store)
    assert await store.claim_key(claim("k", "crashed")) is None
    assert await store.claim_key(claim("k", "retry", at=T0 + LEASE - timedelta(1))) is not None
    assert await store.claim_key(claim("k", "retry", at=T0 + LEASE)) is None
    # Had the first owner been slow rather than dead, its write now stores nothing.
    late = Seal("acme", "k", "crashed", answer_with_id)
    with pytest.raises(Conflict):
        await store.apply("acme", invoice.id, record_payment, seal=late)
    assert await payments(store, invoice) == 0
    await store.apply(
        "acme", invoice.id, record_payment, seal=Seal("acme", "k", "retry", answer_with_id)
    )
    assert await payments(store, invoice) == 1


async def test_a_lapsed_reservation_is_not_taken_by_another_request(store: Store) -> None:
    assert await store.claim_key(claim("k", "crashed")) is None
    later = claim("k", "other", at=T0 + LEASE * 2, fingerprint="fp-2")
    held = await store.claim_key(later)
    assert held is not None and held.owner == "crashed"


@pytest.mark.parametrize("state", [KeyState.SENT, KeyState.UNKNOWN])
async def test_a_request_sent_to_a_backend_is_never_taken_over(
    store: Store, state: KeyState
) -> None:
    assert await store.claim_key(claim("k", "proxy")) is None
    assert await store.set_key_state("acme", "k", "proxy", state)
    held = await store.claim_key(claim("k", "retry", at=T0 + LEASE * 2))
    assert held is not None and held.state is state


async def test_an_expired_key_is_free_for_any_request(store: Store) -> None:
    invoice = await new_invoice(store)
    assert await store.claim_key(claim("k", "first")) is None
    await store.apply(
        "acme", invoice.id, record_payment, seal=Seal("acme", "k", "first", answer_with_id)
    )
    assert await store.claim_key(claim("k", "next", at=T0 + TTL, fingerprint="fp-2")) is None
    record = await store.key_record("acme", "k")
    assert record is not None
    assert (record.owner, record.state, record.answer) == ("next", KeyState.PENDING, None)


async def test_only_the_owner_releases_a_held_key(store: Store) -> None:
    assert await store.claim_key(claim("k", "owner")) is None
    await store.release_key("acme", "k", "someone else")
    assert await store.key_record("acme", "k") is not None
    await store.release_key("acme", "k", "owner")
    assert await store.key_record("acme", "k") is None


async def test_keys_are_scoped_to_their_tenant(store: Store) -> None:
    assert await store.claim_key(claim("k", "acme-owner")) is None
    globex = KeyClaim("globex", "k", "fp-2", "globex-owner", T0, T0 + LEASE, T0 + TTL)
    assert await store.claim_key(globex) is None
    assert await store.forget_key("globex", "k")
    assert not await store.forget_key("globex", "k")
    assert await store.key_record("acme", "k") is not None


async def test_purging_deletes_expired_keys_in_small_batches(store: Store) -> None:
    for index in range(7):
        assert await store.claim_key(claim(f"old-{index}", "o", at=T0)) is None
    for index in range(3):
        assert await store.claim_key(claim(f"new-{index}", "o", at=T0 + TTL)) is None
    now = T0 + TTL + timedelta(seconds=1)
    assert await store.purge_keys(now, 3) == 3
    keys = Keys(store, Idempotency(purge_batch=3), clock=lambda: now)
    assert await keys.purge() == 4
    assert await store.key_record("acme", "old-6") is None
    assert await store.key_record("acme", "new-2") is not None
