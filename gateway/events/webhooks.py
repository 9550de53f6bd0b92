"""Webhook deliveries from the outbox: at least once, signed as Standard Webhooks specify.

Each configured subscription runs its own loop off the request path (one slow receiver
delays no other): it fans the tenant's new events out into its delivery rows, claims
the due ones with a lease (`events.lease_seconds`) so that processes sharing a database
send each once, and POSTs them all at once (`IN_FLIGHT`, or `BACKLOG_IN_FLIGHT` while a
backlog lasts) over kept-alive connections; a pass records its outcomes in one write,
and a pass that dies before that write leaves its deliveries to be sent again once their
leases end, as a crash does. 2xx is delivered; 410 Gone disables the subscription (its
deliveries wait for `enable`); anything else (timeouts, connection errors, redirects,
which are not followed, other statuses) is retried after the subscription's
`retry_schedule`, or a bounded `Retry-After` when longer, and is `failed` once the
schedule is spent. A process that dies holding a lease leaves its deliveries to be sent
again once the lease ends.

A loop does not poll the store: it sleeps until a commit of its own process gives its
tenant's subscriptions work (the store's `notices`), until its earliest pending delivery
is due (a retry, a lease's end), or at the latest `events.poll_seconds` (work that other
processes' commits made). Each pass first reads what is owed, and writes nothing when
that is nothing, so an idle gateway leaves the database alone.

Retention (gateway/ledger/events.py) keeps every event still owed to an active
subscription, and all later ones of its tenant; a disabled or retired subscription
holds nothing back, so its pending deliveries may lose their event to retention.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import aiohttp

import dialects
from dialects.media import CONTENT_TYPES
from gateway.config import Config, Webhook
from gateway.events.attempts import Outcome, outcome_name, settled
from gateway.events.relay import Relay
from gateway.ledger.events import event_json
from gateway.ledger.idempotency import Clock, utc_now
from gateway.observability.logs import event as logged
from gateway.observability.metrics import (
    WEBHOOK_ATTEMPTS,
    WEBHOOK_DELIVERIES,
    WEBHOOK_LAG,
    WEBHOOK_PASSES,
    child,
)
from gateway.store import Store
from gateway.store.deliveries import RELAY, Due, Owed, Settled
from gateway.store.outbox import StoredEvent, payment_of

log = logging.getLogger("gateway.webhooks")

# Deliveries one subscription has in flight at once: IN_FLIGHT, or BACKLOG_IN_FLIGHT
# after a claim that came back full (a backlog: fewer passes, and so fewer claims, settle
# writes and reads of what is owed, per delivery). Every claimed delivery is in flight at
# once, so each is answered or timed out well within its lease. Events one fan-out reads.
IN_FLIGHT = 4
BACKLOG_IN_FLIGHT = 16
FANOUT_BATCH = 200
# Seconds an idle connection to a receiver is kept for the next delivery: less than the
# common servers' own idle timeouts (5 s and up), so a receiver seldom closes one just as
# a delivery goes out on it.
KEEPALIVE_SECONDS = 4.0
# Bodies kept, per event and format, for the next subscription that sends the same one.
BODIES_KEPT = 1024
# Bytes of a receiver's answer read (the rest is dropped), and the longest Retry-After kept.
BODY_BYTES = 4096
MAX_RETRY_AFTER = 6 * 3600.0
# Seconds a loop waits after a pass that failed, and at least between passes that sent
# nothing (a delivery due but held by another process's live lease is not claimed early).
PAUSE_SECONDS = 1.0
MIN_WAIT_SECONDS = 0.01


def signature(keys: Sequence[bytes], message_id: str, timestamp: int, body: bytes) -> str:
    """`webhook-signature`: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` for
    every key (several while a secret is rotated), space-separated."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        for key in keys
    )


def standard_body(event: StoredEvent) -> tuple[bytes, str]:
    """`format: standard`: the event's type, time and data, as the feed shows them."""
    shown = event_json(event)
    body = {key: shown[key] for key in ("type", "timestamp", "data")}
    return json.dumps(body, separators=(",", ":")).encode(), "application/json"


def dialect_body(dialect_name: str, event: StoredEvent) -> tuple[bytes, str]:
    """`format: <dialect>`: the event's payment as that dialect renders a single payment,
    in its first (default) format, with that format's content type."""
    dialect = dialects.get(dialect_name)
    fmt = dialect.formats[0]
    body = dialect.codecs[fmt].encode_payment(payment_of(event))
    return body, CONTENT_TYPES[fmt]


def body_of(hook: Webhook, event: StoredEvent) -> tuple[bytes, str]:
    """What a delivery of `event` to `hook` sends, and its content type."""
    if hook.format == "standard":
        return standard_body(event)
    return dialect_body(hook.format, event)


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP date), bounded."""
    if value is None:
        return None
    try:
        seconds = float(value) if re.fullmatch(r"\s*[0-9]{1,12}\s*", value) else None
        if seconds is None:
            seconds = (parsedate_to_datetime(value) - now).total_seconds()
    except (TypeError, ValueError):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class Deliveries:
    """Sends one process's share of every configured subscription's deliveries."""

    def __init__(
        self,
        store: Store,
        config: Config,
        clock: Clock = utc_now,
    ) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.owner = f"{os.getpid()}-{base64.b32encode(os.urandom(5)).decode()}"
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.relays = self._relays(config)
        self._backlog: set[tuple[str, str]] = set()  # subscriptions whose last claim was full
        self._bodies: dict[tuple[str, str], tuple[bytes, str]] = {}

    def _relays(self, config: Config) -> dict[str, Relay]:
        """Each relay tenant's forwarding (gateway/events/relay.py)."""
        return {
            tenant: Relay(tenant, spec.relay, self.store)
            for tenant, spec in config.tenants.items()
            if spec.relay is not None
        }

    def hooks(self) -> list[tuple[str, Webhook | Relay]]:
        """Every subscription: each tenant's webhooks, and its relay if it has one."""
        found: list[tuple[str, Webhook | Relay]] = []
        for tenant, spec in self.config.tenants.items():
            found += [(tenant, hook) for hook in spec.webhooks]
            if tenant in self.relays:
                found.append((tenant, self.relays[tenant]))
        return found

    async def open(self) -> None:
        """Record the configured subscriptions and open the HTTP clients."""
        await self._sync()
        for relay in self.relays.values():
            await relay.service.client.open()
        # No pool-wide cap: each subscription bounds its own requests (IN_FLIGHT), so
        # receivers on one host never queue behind another subscription's slow one.
        # Connections are kept alive between deliveries: no TCP handshake per delivery.
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=KEEPALIVE_SECONDS)
        self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False)

    async def _sync(self) -> None:
        self.store.notices.subscribed = frozenset(tenant for tenant, _ in self.hooks())
        for tenant, spec in self.config.tenants.items():
            names = [hook.name for hook in spec.webhooks]
            await self.store.webhook_sync(tenant, names + ([RELAY] if spec.relay else []))

    async def reconfigure(self, config: Config) -> None:
        """Deliver for the webhooks of a reloaded `config`: once open, the loops restart
        over them (a delivery in flight is cut off and sent again once its lease ends)."""
        running = bool(self._tasks)
        await self._stop()
        self.config = config
        retired, self.relays = self.relays, self._relays(config)
        if self._session is None:
            return  # not open yet: `open` records them
        for relay in retired.values():
            await relay.service.client.close()
        for relay in self.relays.values():
            await relay.service.client.open()
        try:
            await self._sync()
        except Exception:
            log.exception("recording the reloaded webhooks failed; reload again to retry")
        if running:
            self.start()

    async def _stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def close(self) -> None:
        await self._stop()
        if self._session is not None:
            await self._session.close()
            self._session = None
            for relay in self.relays.values():
                await relay.service.client.close()

    def start(self) -> None:
        """One loop per subscription, off the request path."""
        self._tasks = [asyncio.create_task(self._loop(t, hook)) for t, hook in self.hooks()]

    async def _loop(self, tenant: str, hook: Webhook | Relay) -> None:
        woken = self.store.notices.watch(tenant)
        try:
            while True:
                woken.clear()  # a commit from here on wakes the wait below at once
                try:
                    sent, owed = await self._pass(tenant, hook)
                    wait = 0.0 if sent else await self._idle_for(tenant, hook, owed)
                except Exception:
                    log.exception("webhook %s/%s: a delivery pass failed", tenant, hook.name)
                    child(WEBHOOK_PASSES, tenant, hook.name, "failed").inc()
                    wait = PAUSE_SECONDS
                if wait > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(woken.wait(), wait)
        finally:
            self.store.notices.unwatch(tenant, woken)

    async def _idle_for(self, tenant: str, hook: Webhook | Relay, owed: Owed | None) -> float:
        """Seconds until the subscription's next pass: its earliest pending delivery's
        due time (read again if the pass wrote), at most the poll interval."""
        if owed is not None and (owed.behind or self._due(owed)):  # stale: the pass wrote
            owed = await self.store.webhook_owed(tenant, hook.name)
        wait = self.config.events.poll_seconds
        if owed is not None and owed.next_due is not None:
            wait = min(wait, (owed.next_due - self.clock()).total_seconds())
        return max(wait, MIN_WAIT_SECONDS)

    def _due(self, owed: Owed) -> bool:
        return owed.next_due is not None and owed.next_due <= self.clock()

    async def step(self) -> int:
        """One pass over every subscription, side by side; how many attempts were made."""
        done = await asyncio.gather(*(self.step_one(t, hook) for t, hook in self.hooks()))
        return sum(done)

    async def step_one(self, tenant: str, hook: Webhook | Relay) -> int:
        """Fan new events out, claim what is due, and send it, at most IN_FLIGHT at once."""
        sent, _ = await self._pass(tenant, hook)
        return sent

    async def _pass(self, tenant: str, hook: Webhook | Relay) -> tuple[int, Owed | None]:
        """`step_one`, and what the subscription was found to owe. What is owed is read
        first: with nothing to fan out and nothing due, the pass writes nothing. The
        pass's outcomes are settled together, in one write, once all its attempts are done."""
        owed = await self.store.webhook_owed(tenant, hook.name)
        if owed is None or not (owed.behind or self._due(owed)):
            child(WEBHOOK_PASSES, tenant, hook.name, "idle").inc()
            return 0, owed
        child(WEBHOOK_PASSES, tenant, hook.name, "work").inc()
        now = self.clock()
        if owed.behind:
            await self.fan_out(tenant, hook)
        lease = now + timedelta(seconds=self.config.events.lease_seconds)
        key = (tenant, hook.name)
        limit = BACKLOG_IN_FLIGHT if key in self._backlog else IN_FLIGHT
        sending = isinstance(hook, Relay) and hook.sending
        due = await self.store.webhook_claim(
            tenant, hook.name, self.owner, now, lease, limit, sending=sending
        )
        (self._backlog.add if len(due) == limit else self._backlog.discard)(key)
        found = await asyncio.gather(
            *(self._deliver(tenant, hook, item) for item in due), return_exceptions=True
        )
        settles = [item for item in found if isinstance(item, tuple)]
        if settles:
            await self.store.webhook_settle(tenant, hook.name, self.owner, self.clock(), settles)
        for item in found:
            if isinstance(item, BaseException):  # the others are settled: this one's lease ends
                raise item
        return len(due), owed

    async def fan_out(self, tenant: str, hook: Webhook | Relay) -> None:
        """Make the subscription's deliveries for every event up to the newest."""
        now = self.clock()
        while await self.store.webhook_fanout(tenant, hook.name, hook.events, now, FANOUT_BATCH):
            pass

    async def observe_lag(self) -> None:
        """Set each webhook's lag gauge: the age of the oldest event it is still owed."""
        now = self.clock()
        for tenant, spec in self.config.tenants.items():
            if not spec.webhooks:
                continue
            stored = {found.name: found for found in await self.store.webhooks(tenant)}
            for hook in spec.webhooks:
                found = stored.get(hook.name)
                oldest = found.oldest_pending if found is not None else None
                age = 0.0 if oldest is None else max((now - oldest).total_seconds(), 0.0)
                child(WEBHOOK_LAG, tenant, hook.name).set(age)

    async def _deliver(self, tenant: str, hook: Webhook | Relay, due: Due) -> Settled:
        """One attempt at a claimed delivery, and what it leaves."""
        if isinstance(hook, Relay):
            return due.event.sequence, await hook.deliver(due, self.clock)
        event = due.event
        body, content_type = self.body(hook, event)
        outcome = await self.attempt(hook, event, body, content_type)
        settle = settled(hook, due, outcome, self.clock())
        child(WEBHOOK_ATTEMPTS, tenant, hook.name).inc()
        child(WEBHOOK_DELIVERIES, tenant, hook.name, outcome_name(settle)).inc()
        if not outcome.delivered:
            logged(
                "webhook_failed", logging.WARNING, tenant=tenant, webhook=hook.name,
                event_id=event.id, attempt=settle.attempts, state=settle.state,
                reason=outcome.error,
            )  # fmt: skip
        return event.sequence, settle

    def body(self, hook: Webhook, event: StoredEvent) -> tuple[bytes, str]:
        """`body_of`, rendered once per event and format for all the subscriptions that
        send it (the last BODIES_KEPT kept)."""
        key = (event.id, hook.format)
        found = self._bodies.get(key)
        if found is None:
            found = self._bodies[key] = body_of(hook, event)
            if len(self._bodies) > BODIES_KEPT:
                del self._bodies[next(iter(self._bodies))]  # the oldest
        return found

    async def attempt(
        self, hook: Webhook, event: StoredEvent, body: bytes, content_type: str
    ) -> Outcome:
        """POST one delivery, signed; redirects are not followed, the answer read bounded."""
        assert self._session is not None, "open() first"
        timestamp = int(self.clock().timestamp())
        headers = {
            "content-type": content_type,
            "webhook-id": event.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(hook.keys(), event.id, timestamp, body),
            "webhook-event-type": event.type,
            "webhook-sequence": str(event.sequence),
        }
        timeout = aiohttp.ClientTimeout(total=hook.timeout)
        try:
            async with self._session.post(
                hook.url, data=body, headers=headers, timeout=timeout, allow_redirects=False
            ) as response:
                await response.content.read(BODY_BYTES)
                status = response.status
                wait = retry_after(response.headers.get("Retry-After"), self.clock())
        except TimeoutError:
            return Outcome(None, f"no answer within {hook.timeout:g} s")
        except aiohttp.ClientError as exc:
            return Outcome(None, f"{type(exc).__name__}: {exc}"[:200])
        if 200 <= status < 300:
            return Outcome(status, None)
        reason = "a redirect (not followed)" if 300 <= status < 400 else f"status {status}"
        return Outcome(status, reason, wait)
