"""How SQLite answers the store's hot reads: from an index, in the order asked, unsorted."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.store.sqlite import LISTING, SQLiteStore


def _plan(database: Path, query: str, params: tuple[object, ...]) -> list[str]:
    with sqlite3.connect(database) as db:
        return [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {query}", params)]


async def test_an_invoices_payments_are_listed_in_id_order_without_a_sort(
    tmp_path: Path,
) -> None:
    database = tmp_path / "ledger.db"
    store = SQLiteStore(str(database))
    await store.open()  # every migration applied
    await store.close()
    plan = _plan(database, LISTING.format(columns="id, amount"), (1, -1, 0))
    assert any("USING INDEX payments_live" in step for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan
