"""Rate limits: a token bucket per credential, and one per client address for failed logins.

Both buckets refill continuously. A credential's bucket is spent by every request it
makes. An address's bucket is spent only by failed authentications, so one client
guessing secrets (each guess of a hashed secret costs a scrypt run) is slowed to the
configured pace; while its bucket is empty, requests from that address are refused
before any secret is checked.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

from dialects.errors import TooManyRequests

from .backend import Principal
from .config import Config, RateLimit
from .logs import event
from .lru import LRU
from .metrics import RATE_LIMITED

MAX_BUCKETS = 100_000


def per_tenant(config: Config) -> dict[str, RateLimit]:
    """Each tenant's request limit, for the tenants that have one."""
    return {name: t.rate_limit for name, t in config.tenants.items() if t.rate_limit}


class RateLimiter:
    """Refuses a caller once its bucket is empty, saying when to retry."""

    def __init__(
        self,
        limits: dict[str, RateLimit],
        clock: Callable[[], float] = time.monotonic,
        failures: RateLimit | None = None,
        capacity: int = MAX_BUCKETS,
    ) -> None:
        self._limits = limits
        self._failures = failures
        self._clock = clock
        self._buckets: LRU[tuple[str, ...], tuple[float, float]] = LRU(
            capacity, ttl=_refill(limits, failures), clock=lambda: self._clock()
        )

    def reconfigure(self, limits: dict[str, RateLimit], failures: RateLimit | None) -> None:
        """New limits from a reloaded config; callers keep what they have spent."""
        self._limits, self._failures = limits, failures
        self._buckets.ttl = _refill(limits, failures)

    def take(self, who: Principal) -> None:
        """Spend one of the credential's tokens, or refuse (429, or the dialect's own status)."""
        limit = self._limits.get(who.tenant)
        if limit is not None:
            try:
                self._spend(("credential", who.tenant, who.dialect, who.credential), limit, 1)
            except TooManyRequests:
                RATE_LIMITED.labels(who.dialect, "credential").inc()
                event("rate_limited", logging.WARNING, tenant=who.tenant, dialect=who.dialect)
                raise

    def check_address(self, address: str) -> None:
        """Refuse, before any secret is checked, an address out of failed attempts."""
        if self._failures is not None:
            message = "Too many failed authentications; retry later"
            self._spend(("address", address), self._failures, 0, message)

    def failed(self, address: str) -> bool:
        """Count one failed authentication against the client address.

        True when this failure spent the address's last token: its lockout begins.
        """
        if self._failures is None:
            return False
        try:
            self._spend(("address", address), self._failures, 1)
        except TooManyRequests:
            return False  # already empty: the failure itself is answered as it was
        try:
            self._spend(("address", address), self._failures, 0)
        except TooManyRequests:
            return True
        return False

    def _spend(
        self,
        key: tuple[str, ...],
        limit: RateLimit,
        cost: int,
        message: str = "Rate limit exceeded",
    ) -> None:
        now = self._clock()
        tokens, stamp = self._buckets.get(key) or (float(limit.burst), now)
        tokens = min(float(limit.burst), tokens + (now - stamp) * limit.per_second)
        if tokens < 1:
            self._buckets.put(key, (tokens, now))
            wait = math.ceil((1 - tokens) / limit.per_second)
            raise TooManyRequests(message, retry_after=max(1, wait))
        self._buckets.put(key, (tokens - cost, now))


def _refill(limits: dict[str, RateLimit], failures: RateLimit | None) -> float:
    """How long any bucket takes to fill up again: left alone that long, it may expire."""
    every = [*limits.values(), *([failures] if failures else [])]
    return max((limit.burst / limit.per_second for limit in every), default=0.0) + 1
