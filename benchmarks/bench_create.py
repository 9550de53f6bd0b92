"""What a create costs: payments recorded per second by one gateway process.

    python -m benchmarks.bench_create [--requests 4000] [--connections 16] [--keyed | --observed]
    python -m benchmarks.bench_create --dialects harvest,xero   # Xero XML beside Harvest XML
    python -m benchmarks.bench_create --quickbooks   # QuickBooks on 1 and 2 invoices, Harvest

Starts the gateway (ledger mode, SQLite, synchronous=FULL) as its own process on a
free port and drives it from this process with an aiohttp load loop: each request
records a small payment on one of 64 invoices, in the dialect named, over keep-alive
connections. Prints throughput and latency per dialect (by default Harvest XML, Xero
XML with a custom connection's cached token, and Invoiless JSON, in one run, so their
figures compare). With `--keyed`, each load is
run twice in the same run, without and with a fresh `Idempotency-Key` per request,
and a markdown table compares the two. With `--observed`, two gateways run side by
side, one quiet (no access log, no request metrics) and one observed (a JSON access
line per request, written to /dev/null, and Prometheus request metrics), loaded in
turn in the same run, and a markdown table gives the cost of observing a create.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import uuid

import aiohttp

from benchmarks.harness import (
    ADMIN,
    XERO_TENANT,
    Request,
    bench_config,
    gateway_process,
    load,
)

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


def creator(base: str, dialect: str, invoices: list[int], *, keyed: bool = False) -> Request:
    """Payments spread round-robin over `invoices`, as a real ledger's would be; `keyed`:
    each with its own Idempotency-Key."""
    if dialect == "harvest":
        url = base + "/invoices/{}/payments"
        body = (
            b'<payment><paid-at type="datetime">2026-11-20T00:00:00Z</paid-at>'
            b'<amount type="decimal">1.25</amount><notes>bench</notes></payment>'
        )
        headers = {**HARVEST_AUTH, "Content-Type": "application/xml"}
    elif dialect == "xero":
        return _xero_creator(base, invoices, keyed=keyed)
    elif dialect in ("quickbooks", "quickbooks-split"):
        return _quickbooks_creator(base, invoices, split=dialect.endswith("split"))
    else:
        url = base + "/v1/invoices/{}/payments"
        body = json.dumps({"amount": 1.25, "method": "Card", "notes": "bench"}).encode()
        headers = {"api-key": "bench-key", "Content-Type": "application/json"}

    prefix = uuid.uuid4().hex

    async def send(session: aiohttp.ClientSession, index: int) -> int:
        target = url.format(invoices[index % len(invoices)])
        extra = {"Idempotency-Key": f"{prefix}-{index}"} if keyed else {}
        async with session.post(target, data=body, headers={**headers, **extra}) as response:
            await response.read()
            return response.status

    return send


def _xero_creator(base: str, invoices: list[int], *, keyed: bool) -> Request:
    """Xero XML creates: `POST /api.xro/2.0/Payments`, the invoice named in the body."""
    url = base + "/api.xro/2.0/Payments"
    template = (
        "<Payment><Invoice><InvoiceID>{}</InvoiceID></Invoice><Account><Code>090</Code>"
        "</Account><Date>2026-11-20T00:00:00</Date><Amount>1.25</Amount>"
        "<Reference>bench</Reference></Payment>"
    )
    bodies = [template.format(xero_id(number)).encode() for number in invoices]
    headers = {
        "Authorization": f"Bearer {asyncio.run(xero_token(base))}",
        "xero-tenant-id": XERO_TENANT,
        "Content-Type": "application/xml",
    }
    prefix = uuid.uuid4().hex

    async def send(session: aiohttp.ClientSession, index: int) -> int:
        extra = {"Idempotency-Key": f"{prefix}-{index}"} if keyed else {}
        body = bodies[index % len(bodies)]
        async with session.post(url, data=body, headers={**headers, **extra}) as response:
            await response.read()
            return response.status

    return send


QUICKBOOKS_REALM = "4620816365285051610"
QUICKBOOKS = {
    "realm_id": QUICKBOOKS_REALM,
    "clients": [{"client_id": "bench-qbo", "secret": "bench", "refresh_token": "bench-refresh"}],
}


def _quickbooks_creator(base: str, invoices: list[int], *, split: bool) -> Request:
    """QuickBooks JSON creates, `POST /v3/company/{realm}/payment`: one line, or two lines
    on neighbouring invoices (one payment, two allocations, one transaction)."""
    url = f"{base}/v3/company/{QUICKBOOKS_REALM}/payment?minorversion=75"

    def line(invoice: int) -> dict[str, object]:
        return {"Amount": 1.25, "LinkedTxn": [{"TxnId": str(invoice), "TxnType": "Invoice"}]}

    bodies = []
    for place, invoice in enumerate(invoices):
        lines = [line(invoice)]
        if split:
            lines.append(line(invoices[(place + 1) % len(invoices)]))
        document = {"TxnDate": "2026-11-20", "CustomerRef": {"value": "58"}, "Line": lines,
                    "TotalAmt": 1.25 * len(lines), "PrivateNote": "bench"}  # fmt: skip
        bodies.append(json.dumps(document).encode())
    headers = {
        "Authorization": f"Bearer {asyncio.run(quickbooks_token(base))}",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }

    async def send(session: aiohttp.ClientSession, index: int) -> int:
        body = bodies[index % len(bodies)]
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()
            return response.status

    return send


async def quickbooks_token(base: str) -> str:
    """An app's access token from the refresh-token grant, taken once."""
    form = {"grant_type": "refresh_token", "refresh_token": "bench-refresh"}
    auth = {"Authorization": "Basic " + base64.b64encode(b"bench-qbo:bench").decode()}
    async with aiohttp.ClientSession() as session:
        url = f"{base}/oauth2/v1/tokens/bearer"
        async with session.post(url, data=form, headers=auth) as response:
            assert response.status == 200, await response.text()
            token: str = (await response.json())["access_token"]
            return token


def with_quickbooks(config: dict[str, object]) -> dict[str, object]:
    """The bench config with the bench tenant a QuickBooks company too."""
    tenants = config["tenants"]
    assert isinstance(tenants, dict)
    tenants["bench"]["quickbooks"] = QUICKBOOKS
    return config


def xero_id(number: int) -> str:
    return f"00000000-0000-0000-0000-{number:012x}"


async def xero_token(base: str) -> str:
    """A custom connection's token, taken once: what a Xero client caches."""
    form = {"grant_type": "client_credentials", "client_id": "bench-xero", "client_secret": "bench"}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base}/connect/token", data=form) as response:
            assert response.status == 200, await response.text()
            token: str = (await response.json())["access_token"]
            return token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--invoices", type=int, default=64, help="spread payments over this many")
    parser.add_argument("--synchronous", choices=("FULL", "NORMAL"), default="FULL")
    parser.add_argument("--keyed", action="store_true", help="also with Idempotency-Key")
    parser.add_argument("--observed", action="store_true", help="with and without logs, metrics")
    parser.add_argument(
        "--dialects", default="harvest,xero,invoiless", help="comma-separated, run in order"
    )
    parser.add_argument(
        "--quickbooks",
        action="store_true",
        help="QuickBooks creates on one invoice and on two, beside Harvest's (one sitting)",
    )
    args = parser.parse_args()
    if args.quickbooks:
        args.dialects = "harvest,quickbooks,quickbooks-split"
    if args.keyed:
        compare_keyed(args)
        return
    if args.observed:
        compare_observed(args)
        return
    config = with_quickbooks(bench_config(sqlite_synchronous=args.synchronous))
    with gateway_process(config) as base:
        for dialect in args.dialects.split(","):
            invoices = asyncio.run(new_invoices(base, dialect, args.invoices))
            send = creator(base, dialect, invoices)
            asyncio.run(load(send, connections=1, total=200))  # warm-up
            for connections in (1, args.connections):
                result = asyncio.run(load(send, connections=connections, total=args.requests))
                label = f"create {dialect:9s} c={connections:<3d} sync={args.synchronous}"
                print(result.line(label))


def compare_keyed(args: argparse.Namespace) -> None:
    """Unkeyed and keyed creates, alternating in one run, as a markdown table."""
    rows = []
    with gateway_process(bench_config(sqlite_synchronous=args.synchronous)) as base:
        for dialect in args.dialects.split(","):
            invoices = asyncio.run(new_invoices(base, f"{dialect}-k", args.invoices))
            asyncio.run(load(creator(base, dialect, invoices), connections=1, total=200))
            for connections in (1, args.connections):
                rates = {}
                for keyed in (False, True):
                    send = creator(base, dialect, invoices, keyed=keyed)
                    result = asyncio.run(load(send, connections=connections, total=args.requests))
                    assert result.errors == 0, f"{result.errors} failed creates"
                    rates[keyed] = result
                plain, keyed_result = rates[False], rates[True]
                rows.append(
                    f"| {dialect} | {connections} | {plain.rate:,.0f} | {keyed_result.rate:,.0f}"
                    f" | {keyed_result.rate / plain.rate - 1:+.0%}"
                    f" | {plain.percentile(99):.1f} | {keyed_result.percentile(99):.1f} |"
                )
    print(f"SQLite, synchronous={args.synchronous}, {args.requests} creates per cell\n")
    print(
        "| dialect | connections | creates/s | keyed creates/s | keyed vs not"
        " | p99 ms | keyed p99 ms |\n|---|---|---|---|---|---|---|"
    )
    print("\n".join(rows))


def compare_observed(args: argparse.Namespace) -> None:
    """Creates/s on a quiet and on an observed gateway, alternating in one run."""
    quiet = bench_config(sqlite_synchronous=args.synchronous, metrics={"enabled": False})
    observed = bench_config(sqlite_synchronous=args.synchronous)
    observed["server"] = {"access_log": True}
    rows = []
    with (
        gateway_process(quiet) as plain_base,
        gateway_process(observed, args=("serve", "--log-format", "json")) as observed_base,
    ):
        for dialect in ("harvest", "invoiless"):
            sends = {}
            for name, base in (("quiet", plain_base), ("observed", observed_base)):
                invoices = asyncio.run(new_invoices(base, f"{dialect}-o", args.invoices))
                sends[name] = creator(base, dialect, invoices)
                asyncio.run(load(sends[name], connections=1, total=200))  # warm-up
            for connections in (1, args.connections):
                rates = {}
                for name, send in sends.items():
                    result = asyncio.run(load(send, connections=connections, total=args.requests))
                    assert result.errors == 0, f"{result.errors} failed creates"
                    rates[name] = result
                plain, seen = rates["quiet"], rates["observed"]
                rows.append(
                    f"| {dialect} | {connections} | {plain.rate:,.0f} | {seen.rate:,.0f}"
                    f" | {seen.rate / plain.rate - 1:+.0%}"
                    f" | {plain.percentile(99):.1f} | {seen.percentile(99):.1f} |"
                )
    print(f"SQLite, synchronous={args.synchronous}, {args.requests} creates per cell\n")
    print(
        "| dialect | connections | creates/s quiet | creates/s logged + metrics | cost"
        " | p99 ms quiet | p99 ms observed |\n|---|---|---|---|---|---|---|"
    )
    print("\n".join(rows))


if __name__ == "__main__":
    main()
