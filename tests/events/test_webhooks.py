"""Webhook deliveries to real receivers over HTTP, on both stores: every delivery is
checked with the `standardwebhooks` library; receivers fail, answer slowly, answer 410,
redirect. The gateway's clock is moved by the test and deliveries are stepped directly
(`gateway.deliveries.step()`), so retries are tried exactly when due.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import REGISTRY
from pytest_aiohttp import AiohttpServer
from standardwebhooks import Webhook as Verifier

import dialects
from dialects.media import CONTENT_TYPES
from gateway.config import ConfigError, parse
from gateway.events.webhooks import BACKLOG_IN_FLIGHT, IN_FLIGHT, retry_after
from gateway.processes.reload import reload
from gateway.serving.app import create_app
from gateway.serving.state import GATEWAY, Gateway
from gateway.store import SQLiteStore
from gateway.store.deliveries import DELIVERED, FAILED, PENDING, Settle

from ..clients import CLIENTS
from ..conftest import AiohttpClient, Client
from ..http.wire import DIALECTS
from ..support import ADMIN, make_config, new_invoice, tenant_config

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"o" * 24).decode()


class Clock:
    """The gateway's clock; it starts at the real time since receivers check the
    signed timestamp against theirs (within minutes), and moves only when told."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def move(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Receiver:
    """A webhook receiver: verifies each delivery, records it, answers as told."""

    secrets: list[str]
    answers: list[int] = field(default_factory=list)  # statuses to answer, in turn; then 204
    hang: bool = False
    retry_after: str = "0"  # sent with each 429 and 503
    got: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    peers: list[Any] = field(default_factory=list)  # each delivery's client address

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = dict(request.headers)
        for secret in self.secrets:  # each listed secret signs on its own
            Verifier(secret).verify(body, headers, json_parse=False)
        self.got.append({"headers": headers, "body": body})
        assert request.transport is not None
        self.peers.append(request.transport.get_extra_info("peername"))
        if self.hang:
            await asyncio.Event().wait()
        status = self.answers.pop(0) if self.answers else 204
        if 300 <= status < 400:
            return web.Response(status=status, headers={"Location": self.url + "/elsewhere"})
        return web.Response(
            status=status, headers={"Retry-After": self.retry_after} if status in (429, 503) else {}
        )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hooks", self.handle)
        return app


Start = Callable[..., Awaitable[tuple[Client, Gateway, list[Receiver]]]]


@pytest.fixture
def start(aiohttp_client: AiohttpClient, aiohttp_server: AiohttpServer, database: str) -> Start:
    """A gateway (deliveries left to the test) with one receiver per hook spec given."""

    async def make(
        *hooks: dict[str, Any], clock: Clock, **overrides: Any
    ) -> tuple[Client, Gateway, list[Receiver]]:
        receivers, specs = [], []
        for n, spec in enumerate(hooks):
            secrets = spec.get("secret", SECRET)
            receiver = Receiver([secrets] if isinstance(secrets, str) else list(secrets))
            server = await aiohttp_server(receiver.app())
            receiver.url = str(server.make_url(""))
            receivers.append(receiver)
            specs.append({"name": f"hook{n}", "url": receiver.url + "/hooks", "secret": SECRET}
                         | spec)  # fmt: skip
        acme = tenant_config("acme") | {"webhooks": specs}
        tenants = {"acme": acme, "globex": tenant_config("globex")}
        config = make_config(database, tenants=tenants, **overrides)
        client = await aiohttp_client(create_app(config, clock=clock, deliver=False))
        return client, client.app[GATEWAY], receivers

    return make


async def pay(client: Client, amount: str = "40.00") -> int:
    invoice = await new_invoice(client, total="100.00")
    reply, number = await CLIENTS[DIALECTS[0]](client).create(invoice["id"], amount)
    assert number is not None, reply.body
    return number


async def states(gateway: Gateway, name: str = "hook0") -> dict[str, int]:
    found = {}
    for state in (PENDING, DELIVERED, FAILED):
        found[state] = len(await gateway.store.webhook_deliveries("acme", name, state, 1000))
    return found


# --- configuration ---------------------------------------------------------------------


def hook_config(**hook: Any) -> Any:
    spec = {"name": "erp", "url": "https://erp.example.com/hooks", "secret": SECRET} | hook
    tenant = tenant_config("acme") | {"webhooks": [spec]}
    return parse({"admin_token": "t", "token_secret": "s", "tenants": {"acme": tenant}})


def test_a_webhook_takes_the_defaults_the_issue_gives() -> None:
    hook = hook_config().tenants["acme"].webhooks[0]
    assert hook.events == ("payment.created", "payment.updated", "payment.deleted",
                           "invoice.updated")  # fmt: skip
    assert (hook.format, hook.timeout) == ("standard", 10.0)
    assert hook.retry_schedule == (5, 300, 1800, 7200, 18000, 36000, 36000)


@pytest.mark.parametrize(
    ("hook", "says"),
    [
        ({"secret": "k" * 40}, "whsec_"),
        ({"secret": "whsec_" + base64.b64encode(b"k" * 10).decode()}, "24 to 64 bytes"),
        ({"secret": "whsec_!!"}, "base64"),
        ({"events": ["payment.lost"]}, "payment.lost"),
        ({"format": "nonesuch"}, "neither standard nor a dialect"),
        ({"url": "ftp://erp.example.com/"}, "http(s) URL"),
        ({"retry_schedule": []}, "retry_schedule"),
        ({"timeout": 0}, "timeout"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_wrong_webhook_is_refused_at_load_saying_why(hook: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError, match=None) as refused:
        hook_config(**hook)
    assert says in str(refused.value)


def test_two_webhooks_of_a_tenant_may_not_share_a_name() -> None:
    spec = {"name": "erp", "url": "https://erp.example.com/hooks", "secret": SECRET}
    tenant = tenant_config("acme") | {"webhooks": [spec, spec]}
    with pytest.raises(ConfigError, match="two share a name"):
        parse({"admin_token": "t", "token_secret": "s", "tenants": {"acme": tenant}})


# --- delivery --------------------------------------------------------------------------


@pytest.mark.stores
async def test_each_event_is_delivered_once_signed_by_every_listed_secret(start: Start) -> None:
    clock = Clock()
    client, gateway, (receiver,) = await start({"secret": [OLD_SECRET, SECRET]}, clock=clock)
    number = await pay(client)
    assert await gateway.deliveries.step() == 2
    assert await gateway.deliveries.step() == 0  # delivered: not sent again
    bodies = [json.loads(got["body"]) for got in receiver.got]
    assert [body["type"] for body in bodies] == ["payment.created", "invoice.updated"]
    assert {body["data"]["payment"]["id"] for body in bodies} == {number}
    feed = await client.get(
        "/gateway/v1/events",
        params={"tenant": "acme"},
        headers=ADMIN,
    )
    shown = (await feed.json())["events"]
    for got, event in zip(receiver.got, shown[-2:], strict=True):
        assert got["headers"]["webhook-id"] == event["id"]
        assert json.loads(got["body"]) == {k: event[k] for k in ("type", "timestamp", "data")}
        assert got["headers"]["webhook-sequence"] == str(event["sequence"])
        assert len(got["headers"]["webhook-signature"].split(" ")) == 2
    assert await states(gateway) == {PENDING: 0, DELIVERED: 2, FAILED: 0}


@pytest.mark.stores
async def test_failures_are_retried_on_the_schedule_then_failed(start: Start) -> None:
    clock = Clock()
    client, gateway, (flaky, dead) = await start(
        {"retry_schedule": [2, 5], "events": ["payment.created"]},
        {"retry_schedule": [2], "events": ["payment.created"]},
        clock=clock,
    )
    flaky.answers, dead.answers = [500, 429], [503, 404, 503]
    await pay(client)
    assert await gateway.deliveries.step() == 2  # both fail
    assert await gateway.deliveries.step() == 0  # nothing due before the schedule says
    clock.move(2)
    assert await gateway.deliveries.step() == 2  # flaky: 429; dead: 404, its schedule spent
    assert await states(gateway, "hook1") == {PENDING: 0, DELIVERED: 0, FAILED: 1}
    clock.move(4)
    assert await gateway.deliveries.step() == 0
    clock.move(1)
    assert await gateway.deliveries.step() == 1
    assert await states(gateway, "hook0") == {PENDING: 0, DELIVERED: 1, FAILED: 0}
    assert [len(flaky.got), len(dead.got)] == [3, 2]
    assert len({got["headers"]["webhook-id"] for got in flaky.got}) == 1


@pytest.mark.stores
async def test_gone_disables_the_subscription_until_enabled_and_spares_the_others(
    start: Start,
) -> None:
    clock = Clock()
    client, gateway, (gone, fine) = await start({}, {}, clock=clock)
    gone.answers = [410, 410]  # both its deliveries are in flight at once
    await pay(client)
    await gateway.deliveries.step()
    assert len(gone.got) == 2 and len(fine.got) == 2
    subscriptions = {s.name: s for s in await gateway.store.webhooks("acme")}
    assert subscriptions["hook0"].state == "disabled" and subscriptions["hook1"].state == "active"
    assert subscriptions["hook0"].backlog == 2
    clock.move(120)
    assert await gateway.deliveries.step() == 0  # disabled: nothing is sent
    assert await gateway.store.webhook_enable("acme", "hook0")
    assert await gateway.deliveries.step() == 2
    assert await states(gateway) == {PENDING: 0, DELIVERED: 2, FAILED: 0}
    assert len(gone.got) == 4


@pytest.mark.stores
async def test_a_redirect_is_a_failure_and_is_not_followed(start: Start) -> None:
    clock = Clock()
    client, gateway, (moved,) = await start({"events": ["payment.created"]}, clock=clock)
    moved.answers = [302]
    await pay(client)
    assert await gateway.deliveries.step() == 1
    assert len(moved.got) == 1  # /elsewhere was not asked (it would answer 404 unverified)
    (pending,) = await gateway.store.webhook_deliveries("acme", "hook0", PENDING, 10)
    assert pending.last_status == 302 and pending.attempts == 1
    clock.move(5)
    await gateway.deliveries.step()
    assert await states(gateway) == {PENDING: 0, DELIVERED: 1, FAILED: 0}


@pytest.mark.stores
async def test_a_receiver_that_never_answers_times_out_and_delays_no_other(start: Start) -> None:
    clock = Clock()
    client, gateway, (slow, fine) = await start(
        {"timeout": 0.2, "events": ["payment.created"]}, {"events": ["payment.created"]},
        clock=clock,
    )  # fmt: skip
    slow.hang = True
    await pay(client)
    fine_done = asyncio.create_task(
        gateway.deliveries.step_one("acme", gateway.config.tenants["acme"].webhooks[1])
    )
    assert await fine_done == 1
    assert len(fine.got) == 1  # done while the slow receiver still holds its request
    await gateway.deliveries.step_one("acme", gateway.config.tenants["acme"].webhooks[0])
    (pending,) = await gateway.store.webhook_deliveries("acme", "hook0", PENDING, 10)
    assert pending.last_status is None and "no answer" in (pending.last_error or "")


@pytest.mark.stores
async def test_a_lease_holds_a_delivery_until_it_ends(start: Start) -> None:
    """A process that claimed a delivery and died: no one sends it until its lease ends."""
    clock = Clock()
    client, gateway, (receiver,) = await start({"events": ["payment.created"]}, clock=clock)
    await pay(client)
    store, lease = gateway.store, gateway.config.events.lease_seconds
    await store.webhook_fanout("acme", "hook0", ["payment.created"], clock(), 100)
    dead = await store.webhook_claim(
        "acme", "hook0", "dead-process", clock(), clock() + timedelta(seconds=lease), 10
    )
    assert len(dead) == 1
    assert await gateway.deliveries.step() == 0
    clock.move(lease)
    assert await gateway.deliveries.step() == 1
    assert len(receiver.got) == 1 and await states(gateway) == {PENDING: 0, DELIVERED: 1, FAILED: 0}


@pytest.mark.stores
@pytest.mark.parametrize("dialect", sorted(dialects.units()))
async def test_a_dialect_format_sends_the_payment_as_that_dialect_renders_one(
    start: Start, dialect: str
) -> None:
    clock = Clock()
    client, gateway, (receiver,) = await start(
        {"format": dialect, "events": ["payment.created"]}, clock=clock
    )
    number = await pay(client)
    assert await gateway.deliveries.step() == 1
    (got,) = receiver.got
    codec = dialects.get(dialect)
    fmt = codec.formats[0]
    assert got["headers"]["Content-Type"] == CONTENT_TYPES[fmt]
    assert got["headers"]["webhook-event-type"] == "payment.created"
    assert got["headers"]["webhook-sequence"].isdigit()
    decoded = codec.codecs[fmt].decode_payment(got["body"], foreign_ids=True)
    assert decoded.payment.amount == Decimal("40.00")  # the receiver reads it as its own
    assert str(codec.wire_id(number)) in got["body"].decode()


@pytest.mark.stores
async def test_retention_keeps_what_an_active_subscription_is_still_owed(start: Start) -> None:
    clock = Clock()
    client, gateway, (receiver,) = await start(
        {"events": ["payment.created"]}, clock=clock, events={"retention_seconds": 60}
    )
    receiver.answers = [500]
    await pay(client)
    await gateway.deliveries.step()
    clock.move(gateway.config.events.retention_seconds + 1)
    assert await gateway.feed.purge() == 0  # the payment's events are still owed
    await gateway.deliveries.step()
    assert await states(gateway) == {PENDING: 0, DELIVERED: 1, FAILED: 0}
    assert await gateway.feed.purge() == 2


@pytest.mark.stores
async def test_a_retry_after_longer_than_the_schedule_is_honoured(start: Start) -> None:
    clock = Clock()
    client, gateway, (busy,) = await start(
        {"retry_schedule": [2], "events": ["payment.created"]}, clock=clock
    )
    busy.answers, busy.retry_after = [503], "30"
    await pay(client)
    assert await gateway.deliveries.step() == 1
    clock.move(29)
    assert await gateway.deliveries.step() == 0
    clock.move(1)
    assert await gateway.deliveries.step() == 1
    assert await states(gateway) == {PENDING: 0, DELIVERED: 1, FAILED: 0}


# --- the admin API ---------------------------------------------------------------------


async def admin_json(
    client: Client, method: str, path: str, status: int = 200, **kwargs: Any
) -> Any:
    response = await client.request(method, path, headers=ADMIN, **kwargs)
    assert response.status == status, await response.text()
    return await response.json()


@pytest.mark.stores
async def test_the_admin_api_shows_replays_and_enables_webhooks(start: Start) -> None:
    clock = Clock()
    client, gateway, (gone, dead) = await start(
        {"events": ["payment.created"]},
        {"events": ["payment.created"], "retry_schedule": [1]},
        clock=clock,
    )
    gone.answers, dead.answers = [410], [500, 500]
    await pay(client)
    await gateway.deliveries.step()
    clock.move(1)
    await gateway.deliveries.step()
    shown = await admin_json(client, "GET", "/gateway/v1/webhooks/acme")
    by_name = {hook["name"]: hook for hook in shown["webhooks"]}
    assert by_name["hook0"]["state"] == "disabled" and by_name["hook0"]["backlog"] == 1
    assert by_name["hook1"]["state"] == "active" and by_name["hook1"]["backlog"] == 0
    assert by_name["hook1"]["last_failure"] is not None and by_name["hook1"]["last_success"] is None

    path = "/gateway/v1/webhooks/acme/hook1"
    (failed,) = (await admin_json(client, "GET", f"{path}/deliveries?state=failed"))["deliveries"]
    assert failed["attempts"] == 2 and failed["last_status"] == 500
    assert (await admin_json(client, "GET", f"{path}/deliveries"))["deliveries"] == []
    replayed = await admin_json(
        client, "POST", f"{path}/replay", json={"event_id": failed["event_id"]}
    )
    assert replayed == {"replayed": 1}
    assert await gateway.deliveries.step() == 1
    (done,) = (await admin_json(client, "GET", f"{path}/deliveries?state=delivered"))["deliveries"]
    assert done["event_id"] == failed["event_id"] and done["attempts"] == 1

    assert await admin_json(client, "POST", f"{path}/replay", json={"after": 0}) == {"replayed": 1}
    assert await gateway.deliveries.step() == 1
    assert len(dead.got) == 4

    assert await admin_json(client, "POST", "/gateway/v1/webhooks/acme/hook0/enable") == {
        "name": "hook0", "state": "active",
    }  # fmt: skip
    assert await gateway.deliveries.step() == 1
    assert len(gone.got) == 2


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/gateway/v1/webhooks/nobody", None, 404),
        ("GET", "/gateway/v1/webhooks/acme/nonesuch/deliveries", None, 404),
        ("GET", "/gateway/v1/webhooks/acme/hook0/deliveries?state=lost", None, 422),
        ("POST", "/gateway/v1/webhooks/acme/hook0/replay", {}, 422),
        ("POST", "/gateway/v1/webhooks/acme/hook0/replay", {"after": 1, "event_id": "e"}, 422),
        ("POST", "/gateway/v1/webhooks/acme/hook0/replay", {"after": -1}, 422),
        ("POST", "/gateway/v1/webhooks/acme/hook0/replay", {"event_id": "evt_nonesuch"}, 404),
        ("POST", "/gateway/v1/webhooks/acme/nonesuch/enable", None, 404),
    ],
)
async def test_the_webhook_admin_api_refuses_what_names_nothing(
    start: Start, method: str, path: str, body: Any, status: int
) -> None:
    client, _, _ = await start({}, clock=Clock())
    await admin_json(client, method, path, status, json=body)
    response = await client.request(method, path, json=body)
    assert response.status == 401


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.stores
async def test_metrics_count_outcomes_and_attempts_and_show_the_lag(start: Start) -> None:
    clock = Clock()
    client, gateway, (receiver,) = await start(
        {"name": f"lag{time.monotonic_ns()}", "events": ["payment.created"],
         "retry_schedule": [10]},
        clock=clock,
    )  # fmt: skip
    name = gateway.config.tenants["acme"].webhooks[0].name
    receiver.answers = [500]
    await pay(client)
    await gateway.deliveries.step()
    clock.move(7)
    await admin_json_text(client, "/metrics")
    labels = {"tenant": "acme", "webhook": name}
    assert sample("gateway_webhook_lag_seconds", **labels) == 7.0
    assert sample("gateway_webhook_deliveries_total", outcome="retry", **labels) == 1
    clock.move(3)
    await gateway.deliveries.step()
    await admin_json_text(client, "/metrics")
    assert sample("gateway_webhook_lag_seconds", **labels) == 0.0
    assert sample("gateway_webhook_deliveries_total", outcome="delivered", **labels) == 1
    assert sample("gateway_webhook_attempts_total", **labels) == 2


async def admin_json_text(client: Client, path: str) -> str:
    response = await client.get(path, headers=ADMIN)
    assert response.status == 200, await response.text()
    return await response.text()


@pytest.mark.stores
async def test_a_disabled_webhook_holds_no_event_back_and_gives_up_what_was_purged(
    start: Start,
) -> None:
    clock = Clock()
    client, gateway, (gone,) = await start(
        {"events": ["payment.created"]}, clock=clock, events={"retention_seconds": 60}
    )
    gone.answers = [410]
    await pay(client)
    await gateway.deliveries.step()
    (waiting,) = await gateway.store.webhook_deliveries("acme", "hook0", PENDING, 10)
    assert waiting.attempts == 0  # a 410 spends no attempt
    clock.move(61)
    assert await gateway.feed.purge() == 2
    assert await gateway.store.webhook_enable("acme", "hook0")
    assert await gateway.deliveries.step() == 0
    assert await states(gateway) == {PENDING: 0, DELIVERED: 0, FAILED: 0}  # its event is gone
    (shown,) = await gateway.store.webhooks("acme")
    assert shown.backlog == 0 and len(gone.got) == 1


@pytest.mark.stores
async def test_a_reload_adds_and_retires_webhooks(
    start: Start, aiohttp_server: AiohttpServer, database: str
) -> None:
    clock = Clock()
    client, gateway, (first,) = await start({"events": ["payment.created"]}, clock=clock)
    added = Receiver([SECRET])
    added.url = str((await aiohttp_server(added.app())).make_url(""))
    hook = {"name": "added", "url": added.url + "/hooks", "secret": SECRET,
            "events": ["payment.created"]}  # fmt: skip
    acme = tenant_config("acme") | {"webhooks": [hook]}
    reread = make_config(database, tenants={"acme": acme, "globex": tenant_config("globex")})
    assert await reload(gateway, lambda: reread, "config.yaml")
    await pay(client)
    assert await gateway.deliveries.step() == 1
    assert (len(first.got), len(added.got)) == (0, 1)
    stored = {found.name: found.state for found in await gateway.store.webhooks("acme")}
    assert stored == {"added": "active", "hook0": "retired"}


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("120", 120.0),
        ("Wed, 21 Oct 2026 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2026 07:27:00 GMT", 0.0),  # a date past: at once
        ("999999999", 6 * 3600.0),  # bounded
        ("soon", None),
    ],
)
def test_retry_after_is_read_as_seconds_or_a_date_and_bounded(
    header: str | None, seconds: float | None
) -> None:
    now = datetime(2026, 10, 21, 7, 28, tzinfo=UTC)
    assert retry_after(header, now) == seconds


@pytest.mark.stores
async def test_deliveries_to_a_receiver_share_one_kept_alive_connection(start: Start) -> None:
    clock = Clock()
    client, gateway, (receiver,) = await start({"events": ["payment.created"]}, clock=clock)
    await pay(client)
    assert await gateway.deliveries.step() == 1
    await pay(client)
    assert await gateway.deliveries.step() == 1
    assert len(receiver.peers) == 2 and receiver.peers[0] == receiver.peers[1]  # one TCP connection


@pytest.mark.stores
async def test_a_backlog_is_claimed_in_larger_batches_each_settled_whole(start: Start) -> None:
    clock = Clock()
    client, gateway, (receiver,) = await start({}, clock=clock)
    for _ in range(10):
        await pay(client)  # 20 events: a payment's and its invoice's
    assert await gateway.deliveries.step() == IN_FLIGHT  # a full claim: a backlog
    assert await gateway.deliveries.step() == BACKLOG_IN_FLIGHT
    assert await states(gateway) == {PENDING: 0, DELIVERED: 20, FAILED: 0}
    assert len(receiver.got) == 20
    shown = [json.loads(got["body"])["data"]["payment"]["id"] for got in receiver.got]
    assert len(set(shown)) == 10


@pytest.mark.stores
async def test_a_settle_records_only_the_deliveries_whose_lease_it_holds(start: Start) -> None:
    clock = Clock()
    client, gateway, _ = await start({"events": ["payment.created"]}, clock=clock)
    await pay(client)
    await pay(client)
    store, lease = gateway.store, timedelta(seconds=gateway.config.events.lease_seconds)
    await store.webhook_fanout("acme", "hook0", ["payment.created"], clock(), 100)
    first, second = await store.webhook_claim("acme", "hook0", "a", clock(), clock() + lease, 10)
    clock.move(lease.total_seconds())
    (taken,) = await store.webhook_claim("acme", "hook0", "b", clock(), clock() + lease, 1)
    assert taken.event.sequence == first.event.sequence
    done = Settle(DELIVERED, 1, clock(), 204, None, success=True)
    settles = [(first.event.sequence, done), (second.event.sequence, done)]
    assert await store.webhook_settle("acme", "hook0", "a", clock(), settles) == 1
    assert await states(gateway) == {PENDING: 1, DELIVERED: 1, FAILED: 0}
    (hook,) = await store.webhooks("acme")
    assert hook.last_success == clock() and hook.last_failure is None


class DiesMidSettle(sqlite3.Connection):
    """Fails a settle's last statement, once, when armed: every delivery row of the batch
    updated, nothing committed, as when the process dies in the middle of a batch."""

    armed = False

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if DiesMidSettle.armed and sql.startswith("UPDATE webhook_subscriptions SET last_"):
            DiesMidSettle.armed = False
            raise sqlite3.OperationalError("disk I/O error (injected in the middle of a settle)")
        return super().execute(sql, *args)


class SettleDiesStore(SQLiteStore):
    connection_factory = DiesMidSettle


async def test_a_batch_whose_settle_never_commits_loses_no_delivery(
    aiohttp_client: AiohttpClient, aiohttp_server: AiohttpServer, tmp_path: Path
) -> None:
    clock = Clock()
    receiver = Receiver([SECRET])
    receiver.url = str((await aiohttp_server(receiver.app())).make_url(""))
    hook = {"name": "hook0", "url": receiver.url + "/hooks", "secret": SECRET,
            "events": ["payment.created"]}  # fmt: skip
    tenants = {"acme": tenant_config("acme") | {"webhooks": [hook]}}
    database = tmp_path / "ledger.db"
    config = make_config(f"sqlite:///{database}", tenants=tenants)
    store = SettleDiesStore(str(database))
    client = await aiohttp_client(create_app(config, store, clock=clock, deliver=False))
    gateway = client.app[GATEWAY]
    for _ in range(3):
        await pay(client)
    DiesMidSettle.armed = True
    with pytest.raises(sqlite3.OperationalError, match="in the middle of a settle"):
        await gateway.deliveries.step()
    assert not DiesMidSettle.armed and len(receiver.got) == 3  # sent, then not recorded
    assert await states(gateway) == {PENDING: 3, DELIVERED: 0, FAILED: 0}
    assert await gateway.deliveries.step() == 0  # their leases still hold them
    clock.move(gateway.config.events.lease_seconds)
    assert await gateway.deliveries.step() == 3  # sent again: at least once
    assert await states(gateway) == {PENDING: 0, DELIVERED: 3, FAILED: 0}
    assert len(receiver.got) == 6


@pytest.mark.stores
async def test_a_claim_that_is_sending_notes_it_and_tells_what_was_noted_before(
    start: Start,
) -> None:
    """A relay without keys: its claim marks each create as going out, in the same write,
    so a later claim (after a crash) knows to look at the backend before sending again."""
    clock = Clock()
    client, gateway, _ = await start({"events": ["payment.created"]}, clock=clock)
    await pay(client)
    store, lease = gateway.store, timedelta(seconds=gateway.config.events.lease_seconds)
    await store.webhook_fanout("acme", "hook0", ["payment.created"], clock(), 100)
    (plain,) = await store.webhook_claim("acme", "hook0", "a", clock(), clock() + lease, 4)
    clock.move(lease.total_seconds())
    (first,) = await store.webhook_claim(
        "acme", "hook0", "b", clock(), clock() + lease, 4, sending=True
    )
    clock.move(lease.total_seconds())  # b died after its claim
    (again,) = await store.webhook_claim(
        "acme", "hook0", "c", clock(), clock() + lease, 4, sending=True
    )
    assert (plain.unknown, first.unknown, again.unknown) == (False, False, True)
