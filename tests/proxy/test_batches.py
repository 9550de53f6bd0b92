"""A caller's batch in proxy mode: a backend stores each payment on its own, so the gateway
never answers an error after leaving part of a batch stored there."""

from __future__ import annotations

import pytest

from dialects import testing
from gateway.proxy.service import BATCH_REFUSED, ITEM_UNKNOWN

from ..ledger.test_batches import BATCHERS, ITEM_BY_ITEM, KEY, send_batch
from .conftest import ProxyFactory
from .fake import FakeBackend, Handler, dropped, invoiless_backend, json_answer, status_answer
from .test_faults import CREATE, proxied

pytestmark = pytest.mark.stores


@pytest.mark.parametrize("dialect", BATCHERS)
@pytest.mark.parametrize(
    ("query", "headers"),
    [
        pytest.param("", {}, id="all-or-nothing"),
        pytest.param("", {KEY: "k"}, id="all-or-nothing-keyed"),
        pytest.param(ITEM_BY_ITEM, {KEY: "k"}, id="item-by-item-keyed"),
    ],
)
async def test_a_batch_that_cannot_be_one_write_is_refused_before_anything_is_sent(
    dialect: str,
    query: str,
    headers: dict[str, str],
    make_proxy: ProxyFactory,
    fake: FakeBackend,
) -> None:
    proxy, invoice = await proxied(make_proxy, fake)
    reply = await send_batch(
        proxy, dialect, [(invoice, "1.00"), (invoice, "2.00")], query=query, headers=headers
    )
    message = testing.support(dialect).error(reply.answer(), 400, "validation")
    assert BATCH_REFUSED in message
    assert fake.calls("POST") == []


async def test_item_by_item_without_a_key_each_payment_is_sent_on_its_own(
    make_proxy: ProxyFactory, fake: FakeBackend
) -> None:
    proxy, invoice = await proxied(make_proxy, fake)
    fake.then(json_answer({"message": "exceeds the due amount"}, status=422))
    reply = await send_batch(
        proxy, "xero", [(invoice, "1.00"), (invoice, "2.00")], query=ITEM_BY_ITEM
    )
    assert reply.status == 200, reply.body
    refused, made = reply.xml().iterfind("Payments/Payment")
    assert (refused.get("status"), made.get("status")) == ("ERROR", "OK")
    assert refused.findtext("Amount") == "1.00"  # the refused item says which it was
    assert fake.calls("POST") == [CREATE, CREATE]


@pytest.mark.parametrize("query", ["", ITEM_BY_ITEM])
async def test_a_keyed_batch_of_one_is_sent_once_and_replayed(
    query: str, make_proxy: ProxyFactory, fake: FakeBackend
) -> None:
    proxy, invoice = await proxied(make_proxy, fake)
    keyed = {KEY: "one"}
    first = await send_batch(proxy, "xero", [(invoice, "12.50")], query=query, headers=keyed)
    again = await send_batch(proxy, "xero", [(invoice, "12.50")], query=query, headers=keyed)
    assert first.status == 200, first.body
    assert (again.body, again.headers["Idempotent-Replayed"]) == (first.body, "true")
    assert fake.calls("POST") == [CREATE]


async def test_a_keyed_refusal_item_by_item_is_kept_with_its_key(
    make_proxy: ProxyFactory, fake: FakeBackend
) -> None:
    """The backend refused, so stored nothing: the key keeps the per-item refusal."""
    proxy, invoice = await proxied(make_proxy, fake)
    fake.then(json_answer({"message": "exceeds the due amount"}, status=422))
    keyed = {KEY: "refused-one"}
    first = await send_batch(proxy, "xero", [(invoice, "99.00")], query=ITEM_BY_ITEM, headers=keyed)
    again = await send_batch(proxy, "xero", [(invoice, "99.00")], query=ITEM_BY_ITEM, headers=keyed)
    assert first.status == 200, first.body
    [refused] = first.xml().iterfind("Payments/Payment")
    assert (refused.get("status"), refused.findtext("Amount")) == ("ERROR", "99.00")
    assert (again.body, again.headers["Idempotent-Replayed"]) == (first.body, "true")
    assert fake.calls("POST") == [CREATE]


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        pytest.param(dropped, ITEM_UNKNOWN, id="sent-never-answered"),
        pytest.param(status_answer(503), "", id="backend-unavailable"),
    ],
)
async def test_item_by_item_a_backend_failure_is_that_items_answer_alone(
    failure: Handler, message: str, make_proxy: ProxyFactory, fake: FakeBackend
) -> None:
    """The first payment is stored at the backend: the batch is not answered with an
    error as if nothing were, and an item the backend may have stored says so."""
    proxy, invoice = await proxied(make_proxy, fake)
    fake.then(invoiless_backend, failure)
    items = [(invoice, "1.00"), (invoice, "2.00")]
    reply = await send_batch(proxy, "xero", items, query=ITEM_BY_ITEM)
    assert reply.status == 200, reply.body
    made, failed = reply.xml().iterfind("Payments/Payment")
    assert (made.get("status"), failed.get("status")) == ("OK", "ERROR")
    assert failed.findtext("Amount") == "2.00"
    assert message in (failed.findtext("ValidationErrors/ValidationError/Message") or "")
    assert fake.calls("POST") == [CREATE, CREATE]
