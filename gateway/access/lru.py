"""A bounded map for in-memory tables: least recently used entries leave first, old ones expire.

The rate-limit buckets and the proxy's id-map cache live in one of these, so no table
grows without bound and none is ever thrown away whole (which would, say, hand a
blocked client a full bucket again): past `capacity`, only the entry used longest
ago goes. With a `ttl`, an entry not written for that long is gone as well. The clock
is injected, so tests move time instead of waiting for it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """At most `capacity` entries; each expires `ttl` seconds after it was last written."""

    def __init__(
        self,
        capacity: int,
        *,
        ttl: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.ttl = ttl
        self._clock = clock
        self._entries: OrderedDict[K, tuple[V, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> V | None:
        """The live value under `key` (now the most recently used), or None."""
        found = self._entries.get(key)
        if found is None:
            return None
        value, expires = found
        if expires <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        """Store `value`, making room by dropping expired entries, then the least used."""
        now = self._clock()
        expires = now + self.ttl if self.ttl is not None else float("inf")
        self._entries[key] = (value, expires)
        self._entries.move_to_end(key)
        self._drop_expired(now)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def _drop_expired(self, now: float) -> None:
        """Expired entries at the old end; writes move an entry to the new end."""
        while self._entries:
            _, expires = next(iter(self._entries.values()))
            if expires > now:
                return
            self._entries.popitem(last=False)
