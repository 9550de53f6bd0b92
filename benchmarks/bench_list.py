"""The list path in isolation: server CPU to read and encode one invoice's payments.

    python -m benchmarks.bench_list [--payments 2000] [--repeat 7]
    python -m benchmarks.bench_list --http [--seconds 3] [--against OTHER_CHECKOUT]
    python -m benchmarks.bench_list --against OTHER_CHECKOUT [--rounds 5] [--repeat 15]

Fills a SQLite store in a temporary directory, then times (process CPU, best of
`--repeat`) each dialect and format, alternately in one sitting: through canonical
Payments (`Store.invoice(with_payments=True)` + `encode_payments`, the path before
rows), and from stored rows (`Store.listing` + `Dialect.encode_rows`, what the
gateway serves) by a codec that has seen none of the values yet, then again (values
that repeat across requests, such as creation times, rendered once). HTTP handling is left out. With `--http`, a gateway process serves the
lists instead, one request after another, and the figure is its CPU per request (as
`benchmarks.suite` counts it for its list rows). With `--against` alone, the store
read and the encoding from rows (again), of this checkout and another, alternately in
fresh processes, each payment paid at its own time (as the HTTP benchmarks' payments
are): the best of all rounds per checkout. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
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


async def _fill(store: SQLiteStore, count: int, distinct: bool = False) -> int:
    invoice = await store.create_invoice(
        NewInvoice(TENANT, "L-1", "EUR", Decimal(10**9), datetime.now(UTC).date(),
                   datetime.now(UTC).date())
    )  # fmt: skip
    payment = Payment(
        tenant=TENANT, invoice_id=invoice.id, amount=Decimal("12.50"),
        paid_at=datetime(2024, 8, 18, tzinfo=UTC), method=Method.BANK_TRANSFER,
        notes="Payment for invoice #123", recorded_by="Bench", recorded_by_email="b@example.com",
    )  # fmt: skip
    for number in range(count):
        if distinct:  # each paid at its own time
            moment = datetime(2024, 8, 18, tzinfo=UTC) + timedelta(seconds=number, microseconds=1)
            payment = payment.model_copy(update={"paid_at": moment})
        await store.apply(TENANT, invoice.id, lambda *_, p=payment: Change(False, upsert=p))
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
        return codec.codecs[fmt].encode_rows(found, [])

    async def payments() -> bytes:
        invoice = await store.invoice(TENANT, invoice_id, with_payments=True)
        assert invoice is not None
        return codec.codecs[fmt].encode_payments(invoice.payments, [])

    assert await rows() == await payments()
    new, first, old = [], [], []
    for _ in range(repeat):  # alternate, so drift in the machine's load hits all alike
        fresh = type(codec)()  # nothing remembered yet: every value rendered anew
        fresh.codecs[fmt].encode_rows([])  # compiled, apart from the timing
        first.append(await _best(partial(rows, fresh), 1))
        new.append(await _best(rows, 1))
        old.append(await _best(payments, 1))
    return f"{codec.name} {fmt}", min(old), min(first), min(new)


async def _rows_only(count: int, repeat: int) -> None:
    """Store read and encoding from rows (again), per dialect and format, one line each."""
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(str(Path(tmp) / "bench.db"), synchronous="OFF")
        await store.open()
        try:
            invoice_id = await _fill(store, count, distinct=True)
            for unit in dialects.units().values():
                if unit.route(Op.LIST) is None:
                    continue
                codec = unit.codec
                for fmt in codec.formats:
                    read, encode = await _rows_figures(store, codec, fmt, invoice_id, repeat)
                    print(codec.name, fmt, read, encode)
        finally:
            await store.close()


async def _rows_figures(
    store: SQLiteStore, codec: dialects.Dialect, fmt: dialects.Format, invoice_id: int, repeat: int
) -> tuple[float, float]:
    found = await store.listing(TENANT, invoice_id, codec.row_columns)
    assert found is not None
    codec.codecs[fmt].encode_rows(found, [])  # compiled and the values seen, apart from the timing

    async def read() -> bytes:
        await store.listing(TENANT, invoice_id, codec.row_columns)
        return b""

    async def encode() -> bytes:
        return codec.codecs[fmt].encode_rows(found, [])

    return await _best(read, repeat), await _best(encode, repeat)


def _checkouts(count: int, repeat: int, rounds: int, against: Path) -> None:
    """`_rows_only` of this checkout and `against`, alternately in fresh processes."""
    trees = {"this": Path(__file__).resolve().parents[1], "other": against.resolve()}
    best: dict[tuple[str, str, str], float] = {}
    for _ in range(rounds):
        for label, tree in trees.items():
            command = [sys.executable, __file__, "--rows-only", "--payments", str(count)]
            found = subprocess.run(
                [*command, "--repeat", str(repeat)],
                cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)},
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
            for line in found.splitlines():
                name, fmt, read, encode = line.split()
                for part, figure in (("read", read), ("encode", encode)):
                    key = (f"{name} {fmt}", part, label)
                    best[key] = min(best.get(key, float("inf")), float(figure))
    lists = list(dict.fromkeys(name for name, _, _ in best))
    print(f"\n<!-- python -m benchmarks.bench_list --against {against} --rounds {rounds} -->")
    print(
        "| list of distinct times | read, this | read, other | encoding, this | encoding, other |"
    )
    print("|---|---|---|---|---|")
    for name in lists:
        cells = [best[name, part, label] for part in ("read", "encode") for label in trees]
        print(f"| {name}, {count:,} | " + " | ".join(f"{c:.2f} ms" for c in cells) + " |")


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
    parser.add_argument("--against", type=Path, help="also another checkout, alternately")
    parser.add_argument("--rounds", type=int, default=5, help="with --against, in process")
    parser.add_argument("--rows-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.http:
        _served(args.payments, args.seconds, args.against)
        return
    if args.rows_only:
        asyncio.run(_rows_only(args.payments, args.repeat))
        return
    if args.against is not None:
        _checkouts(args.payments, args.repeat, args.rounds, args.against)
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
