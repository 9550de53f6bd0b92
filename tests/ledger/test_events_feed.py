"""The outbox and its change feed over HTTP, on both stores: every committed ledger change
has its events, in the change's own transaction; nothing else has any.

Writes go through every dialect of the registry that makes them; the feed is read
with the admin token (`GET /gateway/v1/events`) and compared with what the admin API
shows of the same payment and invoice.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

import dialects
from dialects import testing
from dialects.unit import Op
from gateway.serving.app import create_app
from gateway.serving.state import GATEWAY
from gateway.store.outbox import TYPES

from ..clients import CLIENTS
from ..conftest import AiohttpClient, Client
from ..http.wire import DIALECTS
from ..support import ADMIN, make_config, new_invoice
from .test_batches import BATCHERS, ITEM_BY_ITEM, send_batch

pytestmark = pytest.mark.stores
KEY = "Idempotency-Key"
UPDATERS = [name for name in DIALECTS if dialects.unit(name).route(Op.PATCH)]
DELETERS = [name for name in DIALECTS if testing.support(name).deleted_status is not None]


async def feed(
    client: Client, after: int | None = None, limit: int | None = None, tenant: str = "acme"
) -> dict[str, Any]:
    """One page of the feed; it must be answered 200."""
    query: dict[str, str] = {"tenant": tenant}
    if after is not None:
        query["after"] = str(after)
    if limit is not None:
        query["limit"] = str(limit)
    response = await client.get("/gateway/v1/events", params=query, headers=ADMIN)
    assert response.status == 200, await response.text()
    page: dict[str, Any] = await response.json()
    return page


async def since(client: Client, cursor: int) -> list[dict[str, Any]]:
    """Every event after `cursor`, page after page."""
    found: list[dict[str, Any]] = []
    while True:
        page = await feed(client, after=cursor, limit=5)
        found += page["events"]
        if not page["events"]:
            assert page["next"] == cursor
            return found
        cursor = page["next"]


async def shown(client: Client, kind: str, number: int) -> dict[str, Any]:
    response = await client.get(f"/gateway/v1/{kind}s/{number}", headers=ADMIN)
    assert response.status == 200, await response.text()
    found: dict[str, Any] = await response.json()
    return found


async def invoice_facts(client: Client, number: int) -> dict[str, Any]:
    """What an event tells of an invoice, as the admin API shows it now."""
    invoice = await shown(client, "invoice", number)
    return {key: invoice[key] for key in ("id", "number", "due_amount", "status")}


def types(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]


def written() -> dict[str, float]:
    """Events counted by the metric so far, by type (the gateway runs in this process)."""
    found = {
        t: REGISTRY.get_sample_value("gateway_events_written_total", {"type": t}) for t in TYPES
    }
    return {t: value or 0.0 for t, value in found.items()}


async def paid(client: Client, invoice: int, amount: str, dialect: str = DIALECTS[0]) -> int:
    """The id of a payment made in `dialect`, which must be stored."""
    reply, number = await CLIENTS[dialect](client).create(invoice, amount)
    assert number is not None, reply.body
    return number


async def last(client: Client) -> int:
    cursor: int = (await feed(client))["next"]
    return cursor + len(await since(client, cursor))


# --- what each write appends -----------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_create_appends_the_payment_and_its_invoice_as_the_admin_api_shows_them(
    client: Client, dialect: str
) -> None:
    invoice = await new_invoice(client, total="100.00")
    cursor, counted = await last(client), written()
    reply, number = await CLIENTS[dialect](client).create(invoice["id"], "40.00")
    assert number is not None, reply.body
    events = await since(client, cursor)
    assert types(events) == ["payment.created", "invoice.updated"]
    assert [event["sequence"] for event in events] == [cursor + 1, cursor + 2]
    payment, facts = (
        await shown(client, "payment", number),
        await invoice_facts(client, invoice["id"]),
    )
    assert facts["due_amount"] == "60.00" and facts["status"] == "partial"
    for event in events:
        assert event["data"] == {"payment": payment, "invoice": facts}
        assert event["tenant"] == "acme" and event["id"].startswith("evt_")
    assert payment["dialect_ids"][dialect] is not None
    assert len({event["id"] for event in events}) == 2
    assert written()["payment.created"] == counted["payment.created"] + 1
    assert written()["invoice.updated"] == counted["invoice.updated"] + 1


@pytest.mark.parametrize("dialect", UPDATERS)
async def test_an_update_appends_its_event_and_the_invoice_only_when_it_changed(
    client: Client, dialect: str
) -> None:
    invoice = await new_invoice(client, total="100.00")
    number = await paid(client, invoice["id"], "40.00", dialect)
    support, route = testing.support(dialect), dialects.unit(dialect).route(Op.PATCH)
    assert route is not None
    path = route.path.format(payment_id=support.wire_id(number))

    async def patch(amount: str) -> list[dict[str, Any]]:
        cursor = await last(client)
        request = support.create("acme", invoice["id"], amount)
        reply = await CLIENTS[dialect](client).call("PATCH", path, request.body, request.headers)
        assert reply.status == 200, reply.body
        return await since(client, cursor)

    changed = await patch("50.00")
    assert types(changed) == ["payment.updated", "invoice.updated"]
    facts = await invoice_facts(client, invoice["id"])
    assert facts["due_amount"] == "50.00"
    assert changed[0]["data"] == {
        "payment": await shown(client, "payment", number),
        "invoice": facts,
    }
    same = await patch("50.00")  # the same amount again: the invoice did not change
    assert types(same) == ["payment.updated"]
    assert same[0]["data"]["invoice"] == facts


@pytest.mark.parametrize("dialect", DELETERS)
async def test_a_delete_appends_the_deleted_payment_and_the_reopened_invoice(
    client: Client, dialect: str
) -> None:
    invoice = await new_invoice(client)
    number = await paid(client, invoice["id"], "1000.00", dialect)
    before = await shown(client, "payment", number)
    cursor = await last(client)
    reply = await CLIENTS[dialect](client).delete(invoice["id"], number)
    assert reply.status == testing.support(dialect).deleted_status, reply.body
    events = await since(client, cursor)
    assert types(events) == ["payment.deleted", "invoice.updated"]
    facts = await invoice_facts(client, invoice["id"])
    assert (facts["due_amount"], facts["status"]) == ("1000.00", "open")
    payment = events[0]["data"]["payment"]
    assert payment["updated_at"] >= before["updated_at"]
    assert {**payment, "updated_at": None} == {**before, "updated_at": None}
    assert events[1]["data"]["invoice"] == facts


# --- what appends nothing ---------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_refused_write_appends_nothing(client: Client, dialect: str) -> None:
    invoice = await new_invoice(client, total="10.00")
    cursor, counted = await last(client), written()
    reply, number = await CLIENTS[dialect](client).create(invoice["id"], "10.01")
    assert number is None and reply.status >= 400, reply.body
    assert await since(client, cursor) == []
    assert written() == counted


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_an_idempotent_replay_appends_nothing(client: Client, dialect: str) -> None:
    invoice = await new_invoice(client, total="100.00")
    support = testing.support(dialect)
    request = support.create("acme", invoice["id"], "5.00")
    headers = {**request.headers, KEY: f"replayed-{dialect}"}
    caller = CLIENTS[dialect](client)
    cursor = await last(client)
    first = await caller.call(request.method, request.path, request.body, headers)
    again = await caller.call(request.method, request.path, request.body, headers)
    assert first.status == support.create_status, first.body
    assert (again.body, again.headers.get("Idempotent-Replayed")) == (first.body, "true")
    assert types(await since(client, cursor)) == ["payment.created", "invoice.updated"]


# --- batches ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", BATCHERS)
async def test_a_batch_appends_each_stored_items_events_and_a_refused_one_none(
    client: Client, dialect: str
) -> None:
    a, b = await new_invoice(client, total="10.00"), await new_invoice(client, total="10.00")
    cursor, counted = await last(client), written()
    # Summarised: the second item overpays, so the first, stored in the same
    # transaction, is rolled back with it, and its events with it.
    refused = await send_batch(client, dialect, [(a["id"], "4.00"), (a["id"], "7.00")])
    assert refused.status == 400, refused.body
    assert await since(client, cursor) == []
    assert written() == counted
    stored = await send_batch(client, dialect, [(a["id"], "4.00"), (b["id"], "10.00")])
    assert stored.status == 200, stored.body
    events = await since(client, cursor)
    assert types(events) == ["payment.created", "invoice.updated"] * 2
    views = testing.support(dialect).views(stored.body)
    assert [e["data"]["payment"]["id"] for e in events[::2]] == [v["id"] for v in views]
    assert [e["data"]["invoice"]["status"] for e in events] == ["partial"] * 2 + ["paid"] * 2
    # Item by item: the refused item is undone alone, and has no event.
    cursor = events[-1]["sequence"]
    items = [(a["id"], "1.00"), (a["id"], "9.00"), (a["id"], "2.00")]
    mixed = await send_batch(client, dialect, items, query=ITEM_BY_ITEM)
    assert mixed.status == 200, mixed.body
    events = await since(client, cursor)
    assert types(events) == ["payment.created", "invoice.updated"] * 2
    assert [e["data"]["invoice"]["due_amount"] for e in events[1::2]] == ["5.00", "3.00"]
    assert written()["payment.created"] == counted["payment.created"] + 4


@pytest.mark.parametrize("dialect", BATCHERS)
async def test_a_replayed_batch_appends_nothing(client: Client, dialect: str) -> None:
    invoice = await new_invoice(client, total="10.00")
    items = [(invoice["id"], "1.00"), (invoice["id"], "2.00")]
    cursor = await last(client)
    first = await send_batch(client, dialect, items, headers={KEY: "batch-once"})
    again = await send_batch(client, dialect, items, headers={KEY: "batch-once"})
    assert (first.status, again.body) == (200, first.body)
    assert len(await since(client, cursor)) == 4


# --- the feed ---------------------------------------------------------------------------------


async def test_the_feed_pages_in_sequence_order_and_keeps_tenants_apart(client: Client) -> None:
    acme, globex = await new_invoice(client), await new_invoice(client, tenant="globex")
    for _ in range(3):
        await paid(client, acme["id"], "1.00")
    await CLIENTS[DIALECTS[0]](client, "globex").create(globex["id"], "1.00")
    first = await feed(client, after=0, limit=4)
    assert [e["sequence"] for e in first["events"]] == [1, 2, 3, 4]
    assert first["next"] == 4
    rest = await feed(client, after=first["next"], limit=4)
    assert ([e["sequence"] for e in rest["events"]], rest["next"]) == ([5, 6], 6)
    assert await feed(client, after=6) == {"events": [], "next": 6}
    other = await feed(client, tenant="globex")
    assert [(e["sequence"], e["tenant"]) for e in other["events"]] == [(1, "globex"), (2, "globex")]
    assert other["events"][0]["data"]["invoice"]["number"] == globex["number"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        pytest.param({}, "tenant", id="no-tenant"),
        pytest.param({"tenant": "nobody"}, "tenant", id="unknown-tenant"),
        pytest.param({"tenant": "acme", "after": "-1"}, "after", id="negative-after"),
        pytest.param({"tenant": "acme", "after": "1.5"}, "after", id="fractional-after"),
        pytest.param({"tenant": "acme", "limit": "0"}, "limit", id="zero-limit"),
        pytest.param({"tenant": "acme", "limit": "1001"}, "limit", id="limit-over-max"),
        pytest.param({"tenant": "acme", "after": "7"}, "after", id="after-the-newest"),
    ],
)
async def test_a_query_the_feed_cannot_answer_is_refused_in_the_admin_error_shape(
    client: Client, query: dict[str, str], field: str
) -> None:
    response = await client.get("/gateway/v1/events", params=query, headers=ADMIN)
    assert response.status == 422, await response.text()
    error = (await response.json())["error"]
    assert error["code"] == "validation" and set(error["fields"]) == {field}


async def test_the_feed_needs_the_admin_token(client: Client) -> None:
    response = await client.get("/gateway/v1/events", params={"tenant": "acme"})
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "unauthenticated"


# --- retention --------------------------------------------------------------------------------


async def test_old_events_are_purged_in_batches_and_an_older_cursor_is_gone(
    aiohttp_client: AiohttpClient, database: str
) -> None:
    now = [datetime(2026, 11, 20, 9, 30, tzinfo=UTC)]
    config = make_config(database, events={"retention_seconds": 86_400})
    app = create_app(config, clock=lambda: now[0])
    client = await aiohttp_client(app)
    invoice = await new_invoice(client, total="100.00")
    for _ in range(2):
        await paid(client, invoice["id"], "1.00")
    stamped = await feed(client)
    assert {e["timestamp"] for e in stamped["events"]} == {"2026-11-20T09:30:00.000000Z"}
    now[0] += timedelta(days=1, seconds=1)
    await paid(client, invoice["id"], "1.00")

    # A purge batch of three deletes the three oldest events, and no more.
    store = app[GATEWAY].store
    assert await store.purge_events(now[0] - timedelta(days=1), 3) == 3
    gone = await client.get(
        "/gateway/v1/events", params={"tenant": "acme", "after": "2"}, headers=ADMIN
    )
    assert gone.status == 410, await gone.text()
    assert gone.headers["Oldest-Cursor"] == "3"
    error = (await gone.json())["error"]
    assert (error["code"], error["fields"]) == ("gone", {"after": "must be at least 3"})
    assert [e["sequence"] for e in (await feed(client, after=3))["events"]] == [4, 5, 6]

    # The feed's own purge deletes the rest past retention; the events since are kept.
    assert await app[GATEWAY].feed.purge() == 1
    assert await app[GATEWAY].feed.purge() == 0
    for after in (0, 3):
        response = await client.get(
            "/gateway/v1/events", params={"tenant": "acme", "after": str(after)}, headers=ADMIN
        )
        assert (response.status, response.headers["Oldest-Cursor"]) == (410, "4")
    kept = await feed(client)  # no cursor: from the oldest kept
    assert ([e["sequence"] for e in kept["events"]], kept["next"]) == ([5, 6], 6)
    assert await feed(client, after=4) == kept
    assert {e["timestamp"] for e in kept["events"]} == {"2026-11-21T09:30:01.000000Z"}
