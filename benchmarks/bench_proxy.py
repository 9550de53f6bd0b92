"""What proxy mode adds: latency and throughput through the gateway vs the backend alone.

    python -m benchmarks.bench_proxy [--requests 3000] [--connections 16]

Starts a ledger-mode gateway as the backend (Invoiless dialect) and a proxy-mode
gateway in front of it, each its own process on a free port, then in one run
drives the same requests at the backend directly and through the proxy (a Harvest
XML caller, so every request is translated both ways): p50 latency at one
connection, throughput at 16.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
from typing import Any

import aiohttp

from benchmarks.bench_create import new_invoices
from benchmarks.harness import ADMIN, Request, Result, bench_config, gateway_process, load

BASIC = {"Authorization": "Basic " + base64.b64encode(b"bench@example.com:bench").decode()}
API_KEY = {"api-key": "bench-key"}


def proxy_config(backend: str) -> dict[str, Any]:
    config = bench_config()
    tenant = config["tenants"]["bench"]
    tenant["backend"] = {
        "dialect": "invoiless",
        "url": backend,
        "api_key": "bench-key",
        "timeout": 10,
        "retries": 0,
    }
    return config


async def prepare(backend: str, proxy: str, invoices: int) -> tuple[list[int], list[int], str]:
    """Invoices on the backend, their ids as the proxy's callers see them, one payment."""
    backend_ids = await new_invoices(backend, "BENCH", invoices)
    local = []
    async with aiohttp.ClientSession() as session:
        for invoice in backend_ids:
            url = f"{proxy}/gateway/v1/ids/invoiless/invoice/{invoice}?tenant=bench"
            async with session.get(url, headers=ADMIN) as response:
                assert response.status == 200, await response.text()
                local.append((await response.json())["dialect_ids"]["harvest"])
        body = json.dumps({"amount": 1, "method": "Cash"}).encode()
        url = f"{backend}/v1/invoices/{backend_ids[0]}/payments"
        headers = {**API_KEY, "Content-Type": "application/json"}
        async with session.post(url, data=body, headers=headers) as response:
            payment: str = (await response.json())["id"]
    return backend_ids, local, payment


def direct_get(base: str, payment: str) -> Request:
    async def send(session: aiohttp.ClientSession, index: int) -> int:
        async with session.get(f"{base}/v1/payments/{payment}", headers=API_KEY) as response:
            await response.read()
            return response.status

    return send


def proxied_get(base: str, invoice: int, payment: int) -> Request:
    url = f"{base}/invoices/{invoice}/payments/{payment}"

    async def send(session: aiohttp.ClientSession, index: int) -> int:
        async with session.get(url, headers=BASIC) as response:
            await response.read()
            return response.status

    return send


def direct_create(base: str, invoices: list[int]) -> Request:
    body = json.dumps({"amount": 1.25, "method": "Cash", "paidAt": "2026-11-20"}).encode()
    headers = {**API_KEY, "Content-Type": "application/json"}

    async def send(session: aiohttp.ClientSession, index: int) -> int:
        url = f"{base}/v1/invoices/{invoices[index % len(invoices)]}/payments"
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()
            return response.status

    return send


def proxied_create(base: str, invoices: list[int]) -> Request:
    body = (
        b'<payment><paid-at type="datetime">2026-11-20T00:00:00Z</paid-at>'
        b'<amount type="decimal">1.25</amount></payment>'
    )
    headers = {**BASIC, "Content-Type": "application/xml"}

    async def send(session: aiohttp.ClientSession, index: int) -> int:
        url = f"{base}/invoices/{invoices[index % len(invoices)]}/payments"
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()
            return response.status

    return send


def measure(label: str, send: Request, requests: int, connections: int) -> tuple[Result, Result]:
    asyncio.run(load(send, connections=1, total=200))  # warm-up
    single = asyncio.run(load(send, connections=1, total=requests))
    many = asyncio.run(load(send, connections=connections, total=requests))
    print(single.line(f"{label} c=1 "))
    print(many.line(f"{label} c={connections}"))
    return single, many


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    with (
        gateway_process(bench_config()) as backend,
        gateway_process(proxy_config(backend)) as proxy,
    ):
        backend_ids, local_ids, payment = asyncio.run(prepare(backend, proxy, 64))
        local_payment = asyncio.run(_local_payment(proxy, payment))
        for what, direct, proxied in (
            ("get", direct_get(backend, payment), proxied_get(proxy, local_ids[0], local_payment)),
            ("create", direct_create(backend, backend_ids), proxied_create(proxy, local_ids)),
        ):
            d1, dn = measure(f"{what:6s} direct ", direct, args.requests, args.connections)
            p1, pn = measure(f"{what:6s} proxied", proxied, args.requests, args.connections)
            added = p1.percentile(50) - d1.percentile(50)
            print(
                f"{what}: proxy adds {added:.2f} ms at p50 (1 connection); "
                f"throughput at {args.connections} connections {pn.rate:,.0f} vs {dn.rate:,.0f} req/s "
                f"direct ({pn.rate / dn.rate:.0%})"
            )


async def _local_payment(proxy: str, backend_payment: str) -> int:
    url = f"{proxy}/gateway/v1/ids/invoiless/payment/{backend_payment}?tenant=bench"
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers=ADMIN) as response:
            assert response.status == 200, await response.text()
            local: int = (await response.json())["dialect_ids"]["harvest"]
            return local


if __name__ == "__main__":
    main()
