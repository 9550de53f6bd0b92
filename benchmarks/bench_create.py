"""What a create costs: payments recorded per second by one gateway process.

    python -m benchmarks.bench_create [--requests 4000] [--connections 16]

Starts the gateway (ledger mode, SQLite, synchronous=FULL) as its own process on a
free port and drives it from this process with an aiohttp load loop: each request
records a small payment on one of 64 invoices, in the dialect named, over keep-alive
connections. Prints throughput and latency per dialect.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json

import aiohttp

from benchmarks.harness import ADMIN, Request, bench_config, gateway_process, load

HARVEST_AUTH = {"Authorization": "Basic " + base64.b64encode(b"bench@example.com:bench").decode()}


async def new_invoices(base: str, prefix: str, count: int) -> list[int]:
    ids = []
    async with aiohttp.ClientSession() as session:
        for number in range(count):
            body = {
                "tenant": "bench",
                "number": f"{prefix}-{number}",
                "currency": "EUR",
                "total": "99999999999.00",
                "issued_on": "2026-01-01",
                "due_on": "2999-12-31",
            }
            url = f"{base}/gateway/v1/invoices"
            async with session.post(url, json=body, headers=ADMIN) as response:
                assert response.status == 201, await response.text()
                ids.append((await response.json())["id"])
    return ids


def creator(base: str, dialect: str, invoices: list[int]) -> Request:
    """Payments spread round-robin over `invoices`, as a real ledger's would be."""
    if dialect == "harvest":
        url = base + "/invoices/{}/payments"
        body = (
            b'<payment><paid-at type="datetime">2026-11-20T00:00:00Z</paid-at>'
            b'<amount type="decimal">1.25</amount><notes>bench</notes></payment>'
        )
        headers = {**HARVEST_AUTH, "Content-Type": "application/xml"}
    else:
        url = base + "/v1/invoices/{}/payments"
        body = json.dumps({"amount": 1.25, "method": "Card", "notes": "bench"}).encode()
        headers = {"api-key": "bench-key", "Content-Type": "application/json"}

    async def send(session: aiohttp.ClientSession, index: int) -> int:
        target = url.format(invoices[index % len(invoices)])
        async with session.post(target, data=body, headers=headers) as response:
            await response.read()
            return response.status

    return send


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--invoices", type=int, default=64, help="spread payments over this many")
    parser.add_argument("--synchronous", choices=("FULL", "NORMAL"), default="FULL")
    args = parser.parse_args()
    with gateway_process(bench_config(sqlite_synchronous=args.synchronous)) as base:
        for dialect in ("harvest", "invoiless"):
            invoices = asyncio.run(new_invoices(base, dialect, args.invoices))
            send = creator(base, dialect, invoices)
            asyncio.run(load(send, connections=1, total=200))  # warm-up
            for connections in (1, args.connections):
                result = asyncio.run(load(send, connections=connections, total=args.requests))
                label = f"create {dialect:9s} c={connections:<3d} sync={args.synchronous}"
                print(result.line(label))


if __name__ == "__main__":
    main()
