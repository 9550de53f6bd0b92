"""Per-credential rate limits: a token bucket for each caller, refilled continuously."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from dialects.errors import TooManyRequests

from .backend import Principal
from .config import RateLimit

_MAX_BUCKETS = 100_000


class RateLimiter:
    """Refuses a credential's request once its bucket is empty, saying when to retry."""

    def __init__(
        self,
        limits: dict[str, RateLimit],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = limits
        self._clock = clock
        self._buckets: dict[tuple[str, str, str], tuple[float, float]] = {}

    def take(self, who: Principal) -> None:
        limit = self._limits.get(who.tenant)
        if limit is None:
            return
        key = (who.tenant, who.dialect, who.credential)
        now = self._clock()
        tokens, stamp = self._buckets.get(key, (float(limit.burst), now))
        tokens = min(float(limit.burst), tokens + (now - stamp) * limit.per_second)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            wait = math.ceil((1 - tokens) / limit.per_second)
            raise TooManyRequests("Rate limit exceeded", retry_after=max(1, wait))
        if len(self._buckets) >= _MAX_BUCKETS and key not in self._buckets:
            self._buckets.clear()
        self._buckets[key] = (tokens - 1, now)
