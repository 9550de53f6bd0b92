"""What a stranger can make the gateway spend: three figures, each on a real gateway process.

    python -m benchmarks.probes.abuse [timing] [spray] [flood] [--quick] [--against OTHER_CHECKOUT]

- timing: a wrong secret for a login that exists against one that does not, per
  dialect that takes a login (Basic, and the token endpoints), with plain secrets in
  the config beside hashed ones (tenant `plain` and tenant `hashed`). The ratio of the
  medians (unknown / known) is what a prober reads; 1.0 tells nothing.
- spray: a legitimate app asking for tokens one after another at `POST /connect/token`
  while forty source addresses (127.0.0.10 to 127.0.0.49) send wrong secrets for
  made-up apps to both token endpoints; its latency, p50 and p99, and its first token.
- flood: an authenticated Harvest list, one request after another, alone and while four
  clients (127.0.0.20 to 127.0.0.23) post large documents to `POST /gateway/v1/translate`:
  856 KB ones, and 48 KiB ones (under the 64 KiB limit), with and without the per-address
  budget. A flooder's connection closed on it (after a 413) counts as `closed`.

Only loopback addresses are used (127.0.0.x as distinct clients); every loop is bounded
in count and time and stops by itself. With `--against`, each figure is measured for
the other checkout too (say, a `git worktree` of an older commit), one after the other.
Prints markdown tables.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.harness import ADMIN, XERO_TENANT, gateway_server
from dialects import testing
from dialects.auth import basic_header
from gateway.config import hashes

HERE = Path(__file__).resolve().parents[2]
LEGIT = "127.0.0.2"


def _tenant(name: str, secret: Callable[[str], str]) -> dict[str, Any]:
    return {
        "harvest": {"users": [{"email": f"{name}@example.com", "password": secret(f"{name}-h"),
                               "name": name}]},
        "fastbill": {"users": [{"email": f"{name}@example.com", "api_key": secret(f"{name}-f")}]},
        "urlkey": {"business": f"{name}-biz",
                   "apps": [{"app_id": f"{name}-app", "secret": secret(f"{name}-u")}]},
        "xero": {"tenant_id": XERO_TENANT if name == "hashed" else "1" + XERO_TENANT[1:],
                 "clients": [{"client_id": f"{name}-xero", "secret": secret(f"{name}-x")}]},
        "accounts": [{"code": "090"}],
        "default_account": "090",
    }  # fmt: skip


def _config(tree: Path, **server: Any) -> dict[str, Any]:
    """Tenant `plain` (plain secrets) and tenant `hashed` (scrypt); `server` settings the
    tree knows (an older checkout refuses keys it has not heard of)."""
    known = (tree / "gateway" / "config.py").read_text(encoding="utf-8")
    settings = {key: value for key, value in server.items() if key in known}
    return {
        "admin_token": "bench-admin-token",
        "token_secret": "bench-token-secret-of-32-characters!",
        "server": {"access_log": False, "trusted_proxies": [], **settings},
        "tenants": {
            "plain": _tenant("plain", str),
            "hashed": _tenant("hashed", hashes.make_hash),
        },
    }


def _login(dialect: str, login: str, secret: str) -> tuple[str, str, dict[str, str], bytes | None]:
    """(method, path, headers, body) of one login attempt in `dialect`."""
    request = testing.support(dialect).login(login, secret)
    return request.method, request.path, dict(request.headers), request.body


KNOWN = {"harvest": "plain@example.com", "fastbill": "plain@example.com", "urlkey": "plain-app",
         "xero": "plain-xero"}  # fmt: skip


def _session(address: str, connections: int = 1) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(local_addr=(address, 0), limit=connections)
    return aiohttp.ClientSession(connector=connector)


async def _timed(session: aiohttp.ClientSession, base: str, attempt: tuple[str, str, dict[str, str], bytes | None]) -> tuple[int, float]:  # fmt: skip
    method, path, headers, body = attempt
    started = time.perf_counter()
    async with session.request(method, base + path, headers=headers, data=body) as response:
        await response.read()
    return response.status, (time.perf_counter() - started) * 1000


# --- 1: unknown against known logins ----------------------------------------------------


async def _timing(base: str, rounds: int) -> dict[str, tuple[float, float]]:
    medians = {}
    async with _session("127.0.0.3") as session:
        for dialect, login in KNOWN.items():
            known: list[float] = []
            unknown: list[float] = []
            for number in range(rounds):  # alternately, so drift in load hits both alike
                status, ms = await _timed(session, base, _login(dialect, login, f"wrong{number}"))
                assert status == 401, (dialect, status)
                known.append(ms)
                status, ms = await _timed(session, base, _login(dialect, f"x{number}{login}", "w"))
                assert status == 401, (dialect, status)
                unknown.append(ms)
            medians[dialect] = (statistics.median(known), statistics.median(unknown))
    return medians


def timing(trees: dict[str, Path], quick: bool) -> None:
    rounds = 10 if quick else 40
    off = {"auth_failures": None, "auth_address_failures": None, "auth_global_failures": None}
    print(
        "\n| dialect (plain secret) | checkout | known login, wrong secret | unknown login | ratio |"
    )
    print("|---|---|---|---|---|")
    for label, tree in trees.items():
        with gateway_server(_config(tree, **off), checkout=tree) as (base, _):
            found = asyncio.run(_timing(base, rounds))
        for dialect, (known, unknown) in found.items():
            print(
                f"| {dialect} | {label} | {known:.2f} ms | {unknown:.2f} ms | {unknown / known:.2f} |"
            )


# --- 2: a legitimate token under a spray from forty addresses -------------------------


async def _spray(base: str, seconds: float) -> tuple[list[float], float, dict[int, int]]:
    deadline = time.monotonic() + seconds
    answers: dict[int, int] = {}

    async def sprayer(number: int) -> None:
        async with _session(f"127.0.0.{10 + number}", 4) as session:

            async def one(lane: int) -> None:
                for attempt in range(100_000):  # bounded; the deadline ends it first
                    if time.monotonic() > deadline:
                        return
                    dialect = "xero" if attempt % 2 else "urlkey"
                    login = f"made-up-{number}-{lane}-{attempt}"
                    try:
                        status, _ = await _timed(session, base, _login(dialect, login, "guess"))
                    except aiohttp.ClientError:
                        status = 0
                    answers[status] = answers.get(status, 0) + 1

            await asyncio.gather(*(one(lane) for lane in range(4)))

    spray = [asyncio.create_task(sprayer(number)) for number in range(40)]
    await asyncio.sleep(min(2.0, seconds / 4))  # the spray is under way
    latencies: list[float] = []
    refused = 0
    first = float("nan")
    began = time.perf_counter()
    async with _session(LEGIT) as session:
        for _ in range(100_000):
            if time.monotonic() > deadline:
                break
            status, ms = await _timed(session, base, _login("xero", "hashed-xero", "hashed-x"))
            if status == 200:
                latencies.append(ms)
                if len(latencies) == 1:  # from the first try, its refusals and retries included
                    first = (time.perf_counter() - began) * 1000
            else:
                refused += 1
            await asyncio.sleep(0.05)
    await asyncio.gather(*spray)
    answers[-1] = refused
    return latencies, first, answers


def spray(trees: dict[str, Path], quick: bool) -> None:
    seconds = 12.0 if quick else 30.0
    print("\n| checkout | legitimate tokens (refused) | p50 | p99 | first token | spray answers |")
    print("|---|---|---|---|---|---|")
    for label, tree in trees.items():
        with gateway_server(_config(tree), checkout=tree) as (base, _):
            latencies, first, answers = asyncio.run(_spray(base, seconds))
        refused = answers.pop(-1)
        ordered = sorted(latencies) or [float("nan")]
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        shown = ", ".join(f"{status}: {count}" for status, count in sorted(answers.items()))
        print(f"| {label} | {len(latencies)} ({refused}) | {statistics.median(ordered):.1f} ms | "
              f"{p99:.1f} ms | {first:.1f} ms | {shown} |")  # fmt: skip


# --- 3: an authenticated list under a translate flood ----------------------------------


def _document(size: int) -> str:
    one = {"payment": {"amount": "52000.0", "paid_at": "2008-02-14T00:00:00Z", "notes": "Finally."}}
    each = len(json.dumps(one)) + 2
    return json.dumps([one] * max(1, size // each))


async def _flood(base: str, seconds: float, document: str | None) -> tuple[list[float], dict[int, int]]:  # fmt: skip
    async with aiohttp.ClientSession() as admin:
        body = {
            "tenant": "plain",
            "number": "F-1",
            "currency": "EUR",
            "total": "1000.00",
            "issued_on": "2026-01-01",
            "due_on": "2999-12-31",
        }
        async with admin.post(f"{base}/gateway/v1/invoices", json=body, headers=ADMIN) as reply:
            invoice = (await reply.json())["id"]
    deadline = time.monotonic() + seconds
    answers: dict[int, int] = {}
    payload = json.dumps({"from": "harvest", "document": document}).encode() if document else b""

    async def flooder(number: int) -> None:
        async with _session(f"127.0.0.{20 + number}") as session:
            for _ in range(100_000):  # bounded; the deadline ends it first
                if time.monotonic() > deadline:
                    return
                try:
                    status, _ = await _timed(session, base, ("POST", "/gateway/v1/translate",
                                                             {"Content-Type": "application/json"}, payload))  # fmt: skip
                except aiohttp.ClientError:
                    status = 0
                answers[status] = answers.get(status, 0) + 1

    flood = [asyncio.create_task(flooder(n)) for n in range(4)] if document else []
    await asyncio.sleep(0.5 if document else 0)
    latencies: list[float] = []
    request = (
        "GET",
        f"/invoices/{invoice}/payments",
        basic_header("plain@example.com", "plain-h"),
        None,
    )
    async with _session(LEGIT) as session:
        for _ in range(100_000):
            if time.monotonic() > deadline:
                break
            status, ms = await _timed(session, base, request)
            assert status == 200, status
            latencies.append(ms)
            await asyncio.sleep(0.01)
    await asyncio.gather(*flood)
    return latencies, answers


def flood(trees: dict[str, Path], quick: bool) -> None:
    seconds = 6.0 if quick else 20.0
    small = _document(48 * 1024)  # its request (the document escaped in JSON) under 64 KiB
    cases: list[tuple[str, str | None, dict[str, Any]]] = [
        ("none", None, {}),
        ("856 KB documents", _document(856_000), {}),
        ("48 KiB documents", small, {}),
        ("48 KiB documents, no per-address budget", small, {"translate_rate": None}),
    ]
    print("\n| checkout | translate flood (4 clients) | list p50 | list p99 | flood answers |")
    print("|---|---|---|---|---|")
    for label, tree in trees.items():
        for name, document, server in cases:
            with gateway_server(_config(tree, **server), checkout=tree) as (base, _):
                latencies, answers = asyncio.run(_flood(base, seconds, document))
            ordered = sorted(latencies)
            p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
            shown = ", ".join(
                f"{_status(status)}: {count}" for status, count in sorted(answers.items())
            )
            print(f"| {label} | {name} | {statistics.median(ordered):.1f} ms | {p99:.1f} ms | "
                  f"{shown or '-'} |")  # fmt: skip


def _status(status: int) -> str:
    return "closed" if status == 0 else str(status)


FIGURES: dict[str, Callable[[dict[str, Path], bool], None]] = {
    "timing": timing, "spray": spray, "flood": flood,
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("figures", nargs="*", help=f"any of {', '.join(FIGURES)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="fewer rounds, shorter loads")
    parser.add_argument("--against", type=Path, help="also another checkout")
    args = parser.parse_args()
    if unknown := set(args.figures) - set(FIGURES):
        parser.error(f"no figure named {', '.join(sorted(unknown))}")
    trees = {"this": HERE}
    if args.against is not None:
        trees["other"] = args.against.resolve()
    for name in args.figures or FIGURES:
        FIGURES[name](trees, args.quick)
    quick = " --quick" if args.quick else ""
    against = f" --against {args.against}" if args.against else ""
    print(f"\n<!-- python -m benchmarks.probes.abuse {' '.join(args.figures)}{quick}{against} -->")


if __name__ == "__main__":
    main()
