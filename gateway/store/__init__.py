"""Stores behind one interface, chosen by database URL."""

from __future__ import annotations

from .base import (
    MAX_ID,
    BackendRef,
    Change,
    KeyClaim,
    KeyRecord,
    KeyState,
    NewInvoice,
    Rule,
    Seal,
    Store,
)
from .sqlite import SQLiteStore


def open_store(url: str, *, synchronous: str = "FULL") -> Store:
    """A store for `sqlite:///relative.db`, `sqlite:////absolute.db` or `sqlite://:memory:`."""
    if url.startswith("sqlite://"):
        path = url.removeprefix("sqlite://")
        path = path.removeprefix("/") if path != ":memory:" else path
        if not path:
            raise ValueError("sqlite URL names no file")
        return SQLiteStore(path, synchronous=synchronous)
    scheme = url.split("://", 1)[0] if "://" in url else url[:20]
    raise ValueError(f"unsupported database URL scheme {scheme!r} (use sqlite:///path/to/file.db)")


__all__ = [
    "MAX_ID",
    "BackendRef",
    "Change",
    "KeyClaim",
    "KeyRecord",
    "KeyState",
    "NewInvoice",
    "Rule",
    "SQLiteStore",
    "Seal",
    "Store",
    "open_store",
]
