"""Stores behind one interface, chosen by database URL."""

from __future__ import annotations

from gateway.store.base import (
    MAX_ID,
    REFUSALS,
    BackendRef,
    Change,
    KeyClaim,
    KeyRecord,
    KeyState,
    NewInvoice,
    Plan,
    Planned,
    Rule,
    Seal,
    Step,
    Store,
    Written,
    only,
)
from gateway.store.migrations import SchemaTooNew, StoreError
from gateway.store.postgres import PostgresStore, masked
from gateway.store.sqlite import SQLiteStore

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_store(
    url: str,
    *,
    synchronous: str = "FULL",
    pool_size: int = 10,
    acquire_timeout: float = 5.0,
    statement_cache_size: int = 100,
) -> Store:
    """A store for `sqlite:///relative.db`, `sqlite:////absolute.db`, `sqlite://:memory:`
    or `postgresql://user:password@host:5432/dbname` (asyncpg's URL form)."""
    if url.startswith("sqlite://"):
        path = url.removeprefix("sqlite://")
        path = path.removeprefix("/") if path != ":memory:" else path
        if not path:
            raise ValueError("sqlite URL names no file")
        return SQLiteStore(path, synchronous=synchronous)
    if url.startswith(POSTGRES_SCHEMES):
        return PostgresStore(
            url,
            pool_size=pool_size,
            acquire_timeout=acquire_timeout,
            statement_cache_size=statement_cache_size,
        )
    raise ValueError(
        f"unsupported database URL {masked(url)!r}"
        " (use sqlite:///path/to/file.db or postgresql://user:password@host/dbname)"
    )


__all__ = [
    "MAX_ID",
    "REFUSALS",
    "BackendRef",
    "Change",
    "KeyClaim",
    "KeyRecord",
    "KeyState",
    "NewInvoice",
    "Plan",
    "Planned",
    "PostgresStore",
    "Rule",
    "SQLiteStore",
    "SchemaTooNew",
    "Seal",
    "Step",
    "Store",
    "StoreError",
    "masked",
    "Written",
    "only",
    "open_store",
]
