"""Rate limits: a token bucket per credential, the failed-login limits, and a bucket per
client address for work done without credentials (translations).

Every bucket refills continuously. A credential's bucket is spent by every request it
makes. Failed logins are counted two ways, so that a client is refused only for its
own failures, never for those of others behind the same address (a NAT, a proxy):

- per (client address, identity): the identity is what a request claims to be (a
  login, an app, one api key), read before any secret is checked. Each failure (401,
  403) spends one token; while the bucket is empty, that identity is refused from that
  address (429, with Retry-After) before its secret is checked. Another identity from
  the same address is not affected.
- per client address, over all identities: each new identity starts with a full
  bucket, so this larger bucket bounds what one address can make the gateway check.
  Checks of secrets not yet proven (they may cost a scrypt run) take one token before
  they run and give it back when the secret was right; once the bucket is empty they
  wait their turn, paced by its refill, one at a time per address. A turn further
  away than the wait limit (the read timeout) is refused with 429.
- over the whole process, over all addresses: an address's budget does not bound a
  spray from many addresses, so each unproven check also takes one token of one
  process-wide bucket when its turn comes (given back when the secret was right).
  While that bucket is empty, unproven checks are refused at once with 429 rather than
  queued behind the spray. Credentials already proven are answered from memory and
  take no token of any of these buckets.

With shared budgets (`SharedBudgets`, gateway/access/shared.py), each of these
buckets but the work one is also taken from the database's budget for its key, which
every gateway process on the database shares: the process's own bucket still applies,
and the shared one bounds the cluster as a whole.

Authentication code reaches the request's `Attempt` through `ATTEMPT`, which the
gateway's middleware sets; without one (a unit test, a command) nothing is limited.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

from dialects.errors import TooManyRequests
from gateway.access.lru import LRU
from gateway.access.shared import SharedBudgets
from gateway.config import Config, RateLimit
from gateway.ledger.contract import Principal
from gateway.observability.logs import event
from gateway.observability.metrics import RATE_LIMITED

K = TypeVar("K", bound=Hashable)
MAX_BUCKETS = 100_000
# (dialect, kind, name): kind is "login", "key", "app" or "admin"; name is never a secret
Identity = tuple[str, str, str]
_REFUSED = "Too many failed authentications; retry later"
WORK_DEBT = 64  # tokens an address may owe for work without credentials


def per_tenant(config: Config) -> dict[str, RateLimit]:
    """Each tenant's request limit, for the tenants that have one."""
    return {name: t.rate_limit for name, t in config.tenants.items() if t.rate_limit}


@dataclass
class _Bucket:
    tokens: float
    stamp: float
    paced: bool = False  # an address's: its checks have been waiting their turn

    def refill(self, limit: RateLimit, now: float) -> float:
        self.tokens = min(float(limit.burst), self.tokens + (now - self.stamp) * limit.per_second)
        self.stamp = now
        return self.tokens


@dataclass
class _Lane:
    """One address's checks of unproven secrets, one at a time, in arrival order."""

    lock: asyncio.Lock
    users: int = 0


class RateLimiter:
    """Refuses a caller once its bucket is empty, saying when to retry."""

    def __init__(
        self,
        limits: dict[str, RateLimit],
        clock: Callable[[], float] = time.monotonic,
        failures: RateLimit | None = None,
        capacity: int = MAX_BUCKETS,
        *,
        address_failures: RateLimit | None = None,
        global_failures: RateLimit | None = None,
        unauthenticated: RateLimit | None = None,
        wait_limit: float = 10.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        shared: SharedBudgets | None = None,
    ) -> None:
        self.clock, self.sleep, self._wait_limit = clock, sleep, wait_limit  # tests swap them
        self.shared = shared
        if shared is not None:
            # The processes' common time (the epoch's), moved by whatever moves `clock`.
            epoch = time.time() - time.monotonic()
            shared.clock = lambda: epoch + self.clock()
        # three tables, so a spray of identities never evicts an address's budget
        self._credentials: LRU[tuple[str, str, str], _Bucket] = LRU(capacity, clock=self._now)
        self._identities: LRU[tuple[str, Identity], _Bucket] = LRU(capacity, clock=self._now)
        self._addresses: LRU[str, _Bucket] = LRU(capacity, clock=self._now)
        self._work: LRU[str, _Bucket] = LRU(capacity, clock=self._now)
        self._lanes: dict[str, _Lane] = {}
        self._everyone: _Bucket | None = None  # the process-wide bucket, made on first use
        self.reconfigure(limits, failures, address_failures, global_failures, unauthenticated)

    def _now(self) -> float:
        return self.clock()

    def reconfigure(
        self,
        limits: dict[str, RateLimit],
        failures: RateLimit | None,
        address_failures: RateLimit | None = None,
        global_failures: RateLimit | None = None,
        unauthenticated: RateLimit | None = None,
    ) -> None:
        """New limits from a reloaded config; callers keep what they have spent."""
        self._limits, self._failures, self._address = limits, failures, address_failures
        self._global, self._unauthenticated = global_failures, unauthenticated
        self._work.ttl = _refill(unauthenticated) + (
            WORK_DEBT / unauthenticated.per_second if unauthenticated else 0.0
        )
        self._credentials.ttl = _refill(*limits.values())
        self._identities.ttl = _refill(failures)
        # an address's bucket may owe up to `wait_limit` of refill on top of its burst
        self._addresses.ttl = _refill(address_failures) + self._wait_limit

    def take(self, who: Principal) -> None:
        """Spend one of the credential's tokens, or refuse (429, or the dialect's own status)."""
        limit = self._limits.get(who.tenant)
        if limit is None:
            return
        bucket = self._bucket(self._credentials, (who.tenant, who.dialect, who.credential), limit)
        if bucket.tokens < 1:
            RATE_LIMITED.labels(who.dialect, "credential").inc()
            event("rate_limited", logging.WARNING, tenant=who.tenant, dialect=who.dialect)
            raise TooManyRequests("Rate limit exceeded", retry_after=_wait(bucket, limit))
        bucket.tokens -= 1

    async def admit(self, who: Principal) -> None:
        """`take`, then a token of the credential's shared budget (a round trip only when
        this process's lease of it is empty)."""
        self.take(who)
        limit = self._limits.get(who.tenant)
        if self.shared is None or limit is None:
            return
        wait = await self.shared.take(
            ("credential", who.tenant, who.dialect, who.credential), limit
        )
        if wait is not None:
            bucket = self._credentials.get((who.tenant, who.dialect, who.credential))
            if bucket is not None:  # the process's token back: the request is refused
                bucket.tokens = min(float(limit.burst), bucket.tokens + 1)
            RATE_LIMITED.labels(who.dialect, "credential").inc()
            event("rate_limited", logging.WARNING, tenant=who.tenant, dialect=who.dialect)
            raise TooManyRequests("Rate limit exceeded", retry_after=wait)

    def work(self, address: str, operation: str) -> None:
        """Spend one of `address`'s tokens for work done without credentials, or refuse (429)."""
        limit = self._unauthenticated
        if limit is None:
            return
        bucket = self._bucket(self._work, address, limit)
        if bucket.tokens < 1:
            RATE_LIMITED.labels("admin", operation).inc()
            raise TooManyRequests(
                "Too many requests; retry later", retry_after=_wait(bucket, limit)
            )
        bucket.tokens -= 1

    def more_work(self, address: str, tokens: int) -> None:
        """Work admitted by `work` that turned out larger: `tokens` more, owed if need be,
        so the address's next requests wait for them (at most `WORK_DEBT` owed)."""
        limit = self._unauthenticated
        if limit is not None and tokens > 0:
            bucket = self._bucket(self._work, address, limit)
            bucket.tokens = max(bucket.tokens - tokens, -float(WORK_DEBT))

    def attempt(self, address: str) -> Attempt:
        """The failed-login limits of one request from `address`."""
        return Attempt(self, address)

    # --- per (address, identity) -----------------------------------------------------

    def check(self, address: str, identity: Identity) -> None:
        """Refuse, before its secret is checked, an identity out of failures at `address`."""
        limit = self._failures
        if limit is None:
            return
        bucket = self._identities.get((address, identity))  # read only: no entry per caller
        if bucket is not None and bucket.refill(limit, self.clock()) < 1:
            RATE_LIMITED.labels(identity[0], "identity").inc()
            raise TooManyRequests(_REFUSED, retry_after=_wait(bucket, limit))
        if self.shared is not None and (wait := self.shared.refused(_identity(address, identity))):
            RATE_LIMITED.labels(identity[0], "identity").inc()
            raise TooManyRequests(_REFUSED, retry_after=wait)

    async def recheck(self, address: str, identity: Identity) -> None:
        """`check` again once the shared budget's take in flight (if any) is done."""
        if self.shared is not None:
            await self.shared.settled(_identity(address, identity))
            self.check(address, identity)

    def failed(self, address: str, identity: Identity) -> bool:
        """Count one failure of `identity` from `address`; True when it began a lockout."""
        limit = self._failures
        if limit is None:
            return False
        if self.shared is not None:
            self.shared.debit(_identity(address, identity), limit)
        bucket = self._bucket(self._identities, (address, identity), limit)
        if bucket.tokens < 1:
            return False  # already empty: answered as it was
        bucket.tokens -= 1
        return bucket.tokens < 1

    # --- per address, over all identities --------------------------------------------

    def spend(self, address: str) -> None:
        """A failure that took no turn (a bearer token's, say): one of the address's tokens."""
        if self._address is not None:
            bucket = self._bucket(self._addresses, address, self._address)
            bucket.tokens = max(bucket.tokens - 1, min(bucket.tokens, 0.0))
            if self.shared is not None:
                self.shared.debit(("address", address), self._address)

    def refund(self, address: str) -> None:
        """A turn whose secret was right: its token back."""
        if self._address is not None:
            bucket = self._bucket(self._addresses, address, self._address)
            bucket.tokens = min(float(self._address.burst), bucket.tokens + 1)
            if self.shared is not None:
                self.shared.credit(("address", address), self._address)

    @asynccontextmanager
    async def turn(self, address: str, dialect: str) -> AsyncIterator[tuple[bool, bool]]:
        """Check an unproven secret in `address`'s lane, once its budget allows.

        Yields whether a token was taken of the address's bucket and of the process's
        (each to be given back if the secret was right)."""
        start = self._reserve(address, dialect)
        lane = self._lanes.get(address) or self._lanes.setdefault(address, _Lane(asyncio.Lock()))
        lane.users += 1
        try:
            async with lane.lock:
                if start is not None and (delay := start - self.clock()) > 0:
                    await self.sleep(delay)
                yield start is not None, self._take_global(dialect)
        finally:
            lane.users -= 1
            if not lane.users:
                del self._lanes[address]

    # --- over the whole process -------------------------------------------------------

    def _take_global(self, dialect: str) -> bool:
        """One token of the process-wide bucket (True), or 429 now; False: no such limit."""
        limit = self._global
        if limit is None:
            return False
        bucket = self._everyone
        if bucket is None:
            bucket = self._everyone = _Bucket(float(limit.burst), self.clock())
        shared = self.shared.refused(_EVERYONE) if self.shared is not None else None
        if bucket.refill(limit, self.clock()) < 1 or shared:
            RATE_LIMITED.labels(dialect, "global").inc()
            if not bucket.paced:
                event("auth_lockout", logging.WARNING, bucket="global")
            bucket.paced = True
            raise TooManyRequests(_REFUSED, retry_after=shared or _wait(bucket, limit))
        bucket.paced, bucket.tokens = False, bucket.tokens - 1
        if self.shared is not None:
            self.shared.debit(_EVERYONE, limit)
        return True

    def give_back(self) -> None:
        """A check whose secret was right: its process-wide token back."""
        if self._global is not None and self._everyone is not None:
            self._everyone.tokens = min(float(self._global.burst), self._everyone.tokens + 1)
            if self.shared is not None:
                self.shared.credit(_EVERYONE, self._global)

    def _reserve(self, address: str, dialect: str) -> float | None:
        """When this address's next check may start (a token taken), or None: no budget."""
        limit = self._address
        if limit is None:
            return None
        now = self.clock()
        bucket = self._bucket(self._addresses, address, limit)
        delay = max(0.0, (1 - bucket.tokens) / limit.per_second)
        if self.shared is not None and (shared := self.shared.refused(("address", address))):
            delay = max(delay, float(shared))  # the cluster's budget for the address is spent
        if delay > self._wait_limit:
            RATE_LIMITED.labels(dialect, "address").inc()
            raise TooManyRequests(_REFUSED, retry_after=max(1, math.ceil(delay)))
        if delay > 0 and not bucket.paced:
            event("auth_lockout", logging.WARNING, address=address, bucket="address")
        bucket.paced, bucket.tokens = delay > 0, bucket.tokens - 1
        if self.shared is not None:
            self.shared.debit(("address", address), limit)
        return now + delay

    def _bucket(self, table: LRU[K, _Bucket], key: K, limit: RateLimit) -> _Bucket:
        """The bucket under `key`, refilled to now (a full one if there was none)."""
        now = self.clock()
        bucket = table.get(key)
        if bucket is None:
            bucket = _Bucket(float(limit.burst), now)
        else:
            bucket.refill(limit, now)
        table.put(key, bucket)  # written: its time to live starts again
        return bucket


class Attempt:
    """One request's authentication as the failed-login limits see it."""

    __slots__ = ("address", "identity", "_limiter", "_taken", "_taken_global")

    def __init__(self, limiter: RateLimiter, address: str) -> None:
        self._limiter, self.address = limiter, address
        self.identity: Identity | None = None
        self._taken = self._taken_global = False

    def claim(self, identity: Identity) -> None:
        """The request claims to be `identity`: refused now if it is out of failures."""
        self.identity = identity
        self._limiter.check(self.address, identity)

    @asynccontextmanager
    async def unproven(self) -> AsyncIterator[None]:
        """Around a check of a secret the gateway has not seen proven."""
        dialect = self.identity[0] if self.identity else "admin"
        if self.identity is not None:
            await self._limiter.recheck(self.address, self.identity)
        async with self._limiter.turn(self.address, dialect) as (taken, everyone):
            self._taken = self._taken or taken
            self._taken_global = self._taken_global or everyone
            yield

    def proven(self) -> None:
        """The secret checked was right: its turn's tokens go back."""
        if self._taken:
            self._taken = False
            self._limiter.refund(self.address)
        if self._taken_global:
            self._taken_global = False
            self._limiter.give_back()

    def failed(self) -> bool:
        """Count the request's 401/403; True when its identity's lockout began.

        A request that claimed no identity (no credential, or one that cannot be read)
        checked no secret and is not counted."""
        if self.identity is None:
            return False
        if not self._taken:
            self._limiter.spend(self.address)
        self._taken = self._taken_global = False
        return self._limiter.failed(self.address, self.identity)


ATTEMPT: ContextVar[Attempt | None] = ContextVar("attempt", default=None)


def claim(identity: Identity) -> None:
    """The current request claims `identity` (refused if it is out of failures)."""
    attempt = ATTEMPT.get()
    if attempt is not None:
        attempt.claim(identity)


@asynccontextmanager
async def unproven() -> AsyncIterator[None]:
    """Around the current request's check of a secret not yet proven."""
    attempt = ATTEMPT.get()
    if attempt is None:
        yield
        return
    async with attempt.unproven():
        yield


def proven() -> None:
    attempt = ATTEMPT.get()
    if attempt is not None:
        attempt.proven()


_EVERYONE = ("everyone",)


def _identity(address: str, identity: Identity) -> tuple[str, ...]:
    return ("identity", address, *identity)


def _wait(bucket: _Bucket, limit: RateLimit) -> int:
    return max(1, math.ceil((1 - bucket.tokens) / limit.per_second))


def _refill(*limits: RateLimit | None) -> float:
    """How long any bucket takes to fill up again: left alone that long, it may expire."""
    every = [limit for limit in limits if limit is not None]
    return max((limit.burst / limit.per_second for limit in every), default=0.0) + 1
