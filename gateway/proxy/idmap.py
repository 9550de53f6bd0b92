"""The proxy's ids: a backend's own ids where the caller's form carries them, else minted ones.

A caller in front of a backend uses the backend's own ids with no set-up: the
backend's id is read as a canonical number in the backend's form and written in the
caller's (a decimal string "7", an integer 7 and 24 hex digits 000...07 are one
invoice). Where the caller's form cannot carry it (a 96-bit hex id for an integer
form, an id that is no number at all), the store mints a local id in a range of its
own; the admin lookup (`/gateway/v1/ids/...`) tells a caller what it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from dialects import Dialect
from gateway.access.lru import LRU
from gateway.store import BackendRef, Store

# Minted ids live in [MINTED, 10**18), the top of what 18 decimal digits (the longest
# integer id any form reads) hold: an id in that range is never a backend's own, so a
# caller's id says by its size how to find the backend object behind it.
MINTED = 9 * 10**17
_TOP = 10**18
MAX_CACHED = 100_000


class IdMap:
    """One tenant's ids between a backend and its callers, persisted, cached in memory.

    The store holds every minted id and every payment's invoice (minted once, never
    changed but for learning a payment's invoice); the caches save a database round
    trip on the hot path, and since a mapping never changes they can never be stale.
    """

    def __init__(
        self,
        store: Store,
        tenant: str,
        backend: Dialect,
        *,
        parents: bool,
        capacity: int = MAX_CACHED,
    ) -> None:
        """`parents`: the backend reaches a payment only through its invoice, so the
        store keeps every payment's invoice (else only minted ids are stored)."""
        self.store = store
        self.tenant = tenant
        self.backend = backend
        self.parents = parents
        self._stored: LRU[tuple[str, str], int] = LRU(capacity)
        self._refs: LRU[tuple[str, int], BackendRef] = LRU(capacity)

    def identity(self, backend_id: str, caller: Dialect) -> int | None:
        """The backend's own number for `backend_id`, if `caller`'s id form carries it."""
        number = self.backend.parse_id(backend_id)
        if number is None or MINTED <= number < _TOP or not caller.carries(number):
            return None
        return number if str(self.backend.wire_id(number)) == backend_id else None

    async def local(self, kind: str, refs: Sequence[BackendRef], caller: Dialect) -> list[int]:
        """The ids `caller` knows backend objects by: their own, or minted on first sight."""
        numbers = [self.identity(ref.backend_id, caller) for ref in refs]
        if None not in numbers and not self._keeps_parent(kind):
            return cast(list[int], numbers)  # every id the backend's own: nothing stored
        # The store keeps what an identity cannot say: minted ids, and payments' invoices.
        kept = [
            ref
            for ref, number in zip(refs, numbers, strict=True)
            if number is None or (self._keeps_parent(kind) and ref.parent is not None)
        ]
        stored = dict(zip([r.backend_id for r in kept], await self._store(kind, kept), strict=True))
        return [
            number if number is not None else MINTED + stored[ref.backend_id]
            for ref, number in zip(refs, numbers, strict=True)
        ]

    async def ref(self, kind: str, local: int) -> BackendRef | None:
        """The backend object behind a caller's id, or None if there can be none."""
        if MINTED <= local < _TOP:
            return await self._stored_ref(kind, local - MINTED)
        if not self.backend.carries(local):
            return None
        backend_id = str(self.backend.wire_id(local))
        if not self._keeps_parent(kind):
            return BackendRef(backend_id)
        # A payment's invoice, if the proxy has seen it (a nested backend route needs it).
        stored = (await self._store(kind, [BackendRef(backend_id)]))[0]
        return await self._stored_ref(kind, stored) or BackendRef(backend_id)

    def _keeps_parent(self, kind: str) -> bool:
        return self.parents and kind == "payment"

    async def _store(self, kind: str, refs: Sequence[BackendRef]) -> list[int]:
        if not refs:
            return []
        cached = [self._cached(kind, ref) for ref in refs]
        if all(found is not None for found in cached):
            return [found for found in cached if found is not None]
        ids = await self.store.map_ids(self.tenant, kind, refs)
        for ref, stored in zip(refs, ids, strict=True):
            self._remember(kind, stored, ref)
        return ids

    async def _stored_ref(self, kind: str, stored: int) -> BackendRef | None:
        found = self._refs.get((kind, stored))
        if found is None:
            found = await self.store.backend_ref(self.tenant, kind, stored)
            if found is not None:
                self._remember(kind, stored, found)
        return found

    def _cached(self, kind: str, ref: BackendRef) -> int | None:
        stored = self._stored.get((kind, ref.backend_id))
        if stored is None:
            return None
        known = self._refs.get((kind, stored))
        # A payment seen first without its invoice must still learn it in the store.
        if ref.parent is not None and (known is None or known.parent != ref.parent):
            return None
        return stored

    def _remember(self, kind: str, stored: int, ref: BackendRef) -> None:
        self._stored.put((kind, ref.backend_id), stored)
        if kind == "invoice" or ref.parent is not None:
            self._refs.put((kind, stored), ref)
