"""Rate budgets shared by every gateway process on one database, taken in batches.

Each limited key (a credential, an address, an identity at an address, everyone) has
one token bucket in the database (gateway/store/budgets.py). A process holds a local
lease of whole tokens taken from it, at most one batch: a request spends a token of the
lease, with no round trip, and once the lease runs below half a batch a background
take tops it up. Only a request that finds the lease empty waits for a take (one round
trip); a take that finds the shared bucket empty tells when it next holds a token, and
until then the process refuses that key from memory.

Failures (a wrong secret) have already happened when they are counted: they are
charged to the lease at once, into debt if need be, and the debt is paid to the shared
bucket by the next take, which may drive it below zero, so the whole cluster's failures
are counted.

The error bound, per key: every token a request spends was granted by the shared
bucket, so the cluster admits at most what one process would, plus what the processes
hold in their leases (at most one batch each) when they spend it later, plus failures
counted during a take in flight. A process may meanwhile refuse while another holds
unused tokens in its lease (at most one batch each).

While the database cannot be reached, a take grants its batch locally (the process's
own limits still apply), so an outage of the shared budgets never refuses a request.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.access.lru import LRU
from gateway.config import RateLimit
from gateway.store import Store
from gateway.store.budgets import Take

log = logging.getLogger("gateway.access")
PURGE_EVERY = 60.0  # seconds between deletions of buckets full again
MAX_LEASES = 100_000


@dataclass
class _Lease:
    tokens: int = 0  # below zero: failures charged and not yet paid to the shared bucket
    until: float = 0.0  # the shared bucket holds no token before then
    taking: asyncio.Future[None] | None = field(default=None, repr=False)


class SharedBudgets:
    """Leases of tokens from the shared buckets of one store."""

    def __init__(self, store: Store, batch: int, clock: Callable[[], float] = time.time) -> None:
        self.store, self.clock, self._batch = store, clock, batch
        self._leases: LRU[str, _Lease] = LRU(MAX_LEASES, ttl=3600.0)
        self._tasks: set[asyncio.Task[None]] = set()
        self._purged = 0.0
        self._closed = False

    def batch(self, limit: RateLimit) -> int:
        """Tokens one take asks for: a quarter of the burst at most, so that the leases of
        a few processes cannot hold all of it."""
        return max(1, min(self._batch, limit.burst // 4))

    def refused(self, key: tuple[str, ...]) -> int | None:
        """Seconds until `key`'s shared bucket holds a token, if this process knows it is empty."""
        lease = self._leases.get(_name(key))
        return None if lease is None else self._wait(lease)

    async def take(self, key: tuple[str, ...], limit: RateLimit) -> int | None:
        """One token of `key`'s budget (None), or the seconds to wait for one."""
        name = _name(key)
        lease = self._lease(name)
        while True:  # each take grants a token, or tells how long the bucket is empty
            if lease.tokens >= 1:
                lease.tokens -= 1
                self._top_up(name, lease, limit)
                return None
            if (wait := self._wait(lease)) is not None:
                return wait
            await asyncio.shield(self._taking(name, lease, limit))

    async def settled(self, key: tuple[str, ...]) -> None:
        """Once the take in flight for `key` (if any) is done: `refused` then knows what it
        found, so a process learns that a budget is spent before it checks another secret."""
        lease = self._leases.get(_name(key))
        if lease is not None and lease.taking is not None:
            await asyncio.shield(lease.taking)

    def debit(self, key: tuple[str, ...], limit: RateLimit) -> None:
        """Charge one token already spent (a failure), into debt if the lease is empty."""
        name = _name(key)
        lease = self._lease(name)
        lease.tokens -= 1
        self._top_up(name, lease, limit)

    def credit(self, key: tuple[str, ...], limit: RateLimit) -> None:
        """A token taken for nothing (the secret was right) back to the lease."""
        lease = self._leases.get(_name(key))
        if lease is not None:
            lease.tokens = min(lease.tokens + 1, self.batch(limit))

    async def close(self) -> None:
        """Let the takes in flight finish (each is one statement, bounded by the store's
        acquire timeout): one cut off mid-statement would leave its connection busy."""
        self._closed = True
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- takes -----------------------------------------------------------------------

    def _lease(self, name: str) -> _Lease:
        lease = self._leases.get(name)
        if lease is None:
            lease = _Lease()
        self._leases.put(name, lease)
        return lease

    def _wait(self, lease: _Lease) -> int | None:
        if lease.tokens < 1 and (ahead := lease.until - self.clock()) > 0:
            return max(1, math.ceil(ahead))
        return None

    def _top_up(self, name: str, lease: _Lease, limit: RateLimit) -> None:
        """A take in the background once the lease is below half a batch."""
        if lease.tokens * 2 < self.batch(limit) and self._wait(lease) is None and not self._closed:
            self._taking(name, lease, limit)

    def _taking(self, name: str, lease: _Lease, limit: RateLimit) -> asyncio.Future[None]:
        if lease.taking is None:
            task = asyncio.get_running_loop().create_task(self._take(name, lease, limit))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            lease.taking = task
        return lease.taking

    async def _take(self, name: str, lease: _Lease, limit: RateLimit) -> None:
        owed = max(0, -lease.tokens)
        want = self.batch(limit) - max(0, lease.tokens)
        now = self.clock()
        lease.tokens += owed  # paid by this take
        try:
            grant = await self.store.take_budget(
                Take(name, limit.burst, limit.per_second, owed, want, now)
            )
        except Exception as exc:  # out of reach, or busy: this process counts alone
            log.warning("shared rate budget unavailable, counting locally: %s", exc)
            lease.tokens += want
        else:
            lease.tokens += grant.granted
            short = grant.granted < want
            lease.until = now + (1 - grant.left) / limit.per_second if short else 0.0
        finally:
            lease.taking = None
        if now - self._purged > PURGE_EVERY:
            self._purged = now
            try:
                await self.store.purge_budgets(now)
            except Exception as exc:
                log.warning("shared rate budgets not purged: %s", exc)


def _name(key: tuple[str, ...]) -> str:
    """The bucket's name in the database: a digest, so no address or login is stored."""
    return hashlib.sha256("\x1f".join(key).encode()).hexdigest()[:32]
