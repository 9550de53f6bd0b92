"""How SQLite answers the store's hot reads: from an index, in the order asked, unsorted."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.store.sqlite import CLAIM, LISTING, OWED, SQLiteStore


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


async def test_webhook_claims_and_dues_read_indexes_never_the_backlog(tmp_path: Path) -> None:
    """A claim walks the pending rows in sequence order and stops at its batch; what is
    owed reads the first unleased pending row and the leased ones: no sort, no scan of
    the subscription's pending rows (a pass costs the same with a backlog of any length)."""
    database = tmp_path / "ledger.db"
    store = SQLiteStore(str(database))
    await store.open()
    await store.close()
    claim = _plan(database, CLAIM, ("o", "t", "a", "hook", "t", "t", 4))
    assert any("USING INDEX webhook_pending" in step for step in claim), claim
    owed = _plan(database, OWED, ("a", "hook"))
    assert any("USING INDEX webhook_leased" in step for step in owed), owed
    assert any("USING INDEX webhook_due (tenant=? AND subscription=? AND state=?)" in step
               for step in owed), owed  # fmt: skip
    assert not any("TEMP B-TREE" in step for step in claim + owed), (claim, owed)
