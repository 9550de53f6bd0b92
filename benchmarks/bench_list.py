"""The list path in isolation: server CPU to read and encode one invoice's payments.

    python -m benchmarks.bench_list [--payments 2000] [--repeat 7]
    python -m benchmarks.bench_list --http [--seconds 3] [--against OTHER_CHECKOUT]

Fills a SQLite store in a temporary directory, then times (process CPU, best of
`--repeat`) each dialect and format, alternately in one sitting: through canonical
Payments (`Store.invoice(with_payments=True)` + `encode_payments`, the path before
rows), and from stored rows (`Store.listing` + `Dialect.encode_rows`, what the
gateway serves) by a codec that has seen none of the values yet, then again (values
that repeat across requests, such as creation times, rendered once). HTTP handling is left out. With `--http`, a gateway process serves the
lists instead, one request after another, and the figure is its CPU per request (as
`benchmarks.suite` counts it for its list rows). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path

import dialects
from benchmarks import fixtures
from benchmarks.harness import gateway_server
from benchmarks.suite import gateway_config
from benchmarks.wrk import sequential
from dialects.model import Method, Payment
from dialects.unit import Op
from gateway.store import Change, NewInvoice
from gateway.store.sqlite import SQLiteStore

TENANT = "bench"


async def _fill(store: SQLiteStore, count: int) -> int:
    invoice = await store.create_invoice(
        NewInvoice(TENANT, "L-1", "EUR", Decimal(10**9), datetime.now(UTC).date(),
                   datetime.now(UTC).date())
    )  # fmt: skip
    payment = Payment(
        tenant=TENANT, invoice_id=invoice.id, amount=Decimal("12.50"),
        paid_at=datetime(2024, 8, 18, tzinfo=UTC), method=Method.BANK_TRANSFER,
        notes="Payment for invoice #123", recorded_by="Bench", recorded_by_email="b@example.com",
    )  # fmt: skip
    for _ in range(count):
        await store.apply(TENANT, invoice.id, lambda *_: Change(False, upsert=payment))
    return invoice.id


async def _best(work: Callable[[], Awaitable[bytes]], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        await work()
        best = min(best, time.process_time() - started)
    return best * 1000


async def _measure(count: int, repeat: int) -> list[tuple[str, float, float, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(str(Path(tmp) / "bench.db"), synchronous="OFF")
        await store.open()
        try:
            invoice_id = await _fill(store, count)
            return [
                row
                for unit in dialects.units().values()
                for fmt in unit.codec.formats
                if unit.route(Op.LIST) is not None
                for row in [await _one(store, unit.codec, fmt, invoice_id, repeat)]
            ]
        finally:
            await store.close()


async def _one(
    store: SQLiteStore, codec: dialects.Dialect, fmt: dialects.Format, invoice_id: int, repeat: int
) -> tuple[str, float, float, float]:
    """Through Payments; from rows the first time a codec sees them; from rows again."""

    async def rows(codec: dialects.Dialect = codec) -> bytes:
        found = await store.listing(TENANT, invoice_id, codec.row_columns)
        assert found is not None
        return codec.encode_rows(found, fmt, [])

    async def payments() -> bytes:
        invoice = await store.invoice(TENANT, invoice_id, with_payments=True)
        assert invoice is not None
        return codec.encode_payments(invoice.payments, fmt, [])

    assert await rows() == await payments()
    new, first, old = [], [], []
    for _ in range(repeat):  # alternate, so drift in the machine's load hits all alike
        fresh = type(codec)()  # nothing remembered yet: every value rendered anew
        fresh.encode_rows([], fmt)  # compiled, apart from the timing
        first.append(await _best(partial(rows, fresh), 1))
        new.append(await _best(rows, 1))
        old.append(await _best(payments, 1))
    return f"{codec.name} {fmt}", min(old), min(first), min(new)


def _served(count: int, seconds: float, against: Path | None) -> None:
    trees: list[Path | None] = [None] if against is None else [None, against]
    with ExitStack() as stack:
        servers = [stack.enter_context(gateway_server(gateway_config(), checkout=t)) for t in trees]
        setups = [asyncio.run(_served_invoice(base, count)) for base, _ in servers]
        cpu: list[list[list[float]]] = [[] for _ in fixtures.LIST_DIALECTS]
        for _ in range(3):  # rounds, the trees alternately: drift in load hits both alike
            for number, dialect in enumerate(fixtures.LIST_DIALECTS):
                row = []
                for (base, process), (invoice, token) in zip(servers, setups, strict=True):
                    scenario = fixtures.listing(base, dialect, invoice, token)
                    found = sequential(scenario, seconds=seconds, server_pid=process.pid)
                    assert not found.failures, dialect
                    row.append(found.cpu_ms_each)
                cpu[number].append(row)
    command = f"python -m benchmarks.bench_list --http --payments {count}"
    print(f"\n<!-- {command}{f' --against {against}' if against else ''} -->")
    print(
        "| list, one request after another | server CPU each, this tree | "
        + ("the other checkout |" if against else "")
    )
    print("|---|---|" + ("---|" if against else ""))
    for dialect, rounds in zip(fixtures.LIST_DIALECTS, cpu, strict=True):
        medians = [statistics.median(r[i] for r in rounds) for i in range(len(trees))]
        shown = " | ".join(f"{m:.1f} ms" for m in medians)
        print(f"| {dialect}, {count:,} payments | {shown} |")


async def _served_invoice(base: str, count: int) -> tuple[fixtures.Invoice, str]:
    invoice = (await fixtures.invoices(base, "list", 1))[0]
    await fixtures.pay(base, invoice, count)
    return invoice, await fixtures.urlkey_token(base)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--http", action="store_true", help="whole requests to a gateway")
    parser.add_argument("--seconds", type=float, default=3.0, help="per dialect, with --http")
    parser.add_argument("--against", type=Path, help="with --http: also another checkout")
    args = parser.parse_args()
    if args.http:
        _served(args.payments, args.seconds, args.against)
        return
    results = asyncio.run(_measure(args.payments, args.repeat))
    print(f"\n<!-- python -m benchmarks.bench_list --payments {args.payments} -->")
    print("| list (store read and encoding) | through Payments | from rows, first time | again |")
    print("|---|---|---|---|")
    for name, old, first, new in results:
        print(
            f"| {name}, {args.payments:,} payments | {old:.1f} ms | {first:.1f} ms | {new:.1f} ms |"
        )


if __name__ == "__main__":
    main()
