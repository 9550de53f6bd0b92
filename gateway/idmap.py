"""The proxy's id map: backend ids to caller-visible ids, persisted, cached in memory."""

from __future__ import annotations

from collections.abc import Sequence

from .store import BackendRef, Store

_MAX_CACHED = 100_000


class IdMap:
    """One tenant's bijection between backend ids and local integer ids.

    The store holds the truth (minted once, never changed but for learning a
    payment's parent invoice); the caches save a database round trip on the hot
    path, and since a mapping never changes they can never be stale.
    """

    def __init__(self, store: Store, tenant: str) -> None:
        self.store = store
        self.tenant = tenant
        self._local: dict[tuple[str, str], int] = {}
        self._refs: dict[tuple[str, int], BackendRef] = {}

    async def local(self, kind: str, refs: Sequence[BackendRef]) -> list[int]:
        """Local ids for backend objects, minted on first sight."""
        cached = [self._cached_local(kind, ref) for ref in refs]
        if all(local is not None for local in cached):
            return [local for local in cached if local is not None]
        ids = await self.store.map_ids(self.tenant, kind, refs)
        for ref, local in zip(refs, ids, strict=True):
            self._remember(kind, local, ref)
        return ids

    async def ref(self, kind: str, local: int) -> BackendRef | None:
        """The backend object behind a local id, or None if there is none."""
        found = self._refs.get((kind, local))
        if found is None:
            found = await self.store.backend_ref(self.tenant, kind, local)
            if found is not None:
                self._remember(kind, local, found)
        return found

    def _cached_local(self, kind: str, ref: BackendRef) -> int | None:
        local = self._local.get((kind, ref.backend_id))
        if local is None:
            return None
        known = self._refs.get((kind, local))
        # A payment seen first without its invoice must still learn it in the store.
        if ref.parent is not None and (known is None or known.parent != ref.parent):
            return None
        return local

    def _remember(self, kind: str, local: int, ref: BackendRef) -> None:
        if len(self._refs) >= _MAX_CACHED:
            self._local.clear()
            self._refs.clear()
        self._local[(kind, ref.backend_id)] = local
        if kind == "invoice" or ref.parent is not None:
            self._refs[(kind, local)] = ref
