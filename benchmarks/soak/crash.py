"""Crash harness: keyed writers, kill -9 at random moments, restarts; nothing lost or doubled.

    python -m benchmarks.soak.crash [--cycles 20] [--writers 8] [--stores sqlite postgresql]
                               [--workers 1 2] [--relay harvest|xero]
    python -m benchmarks.soak.crash --server-kills [--gateways 2] [--cycles 20] [--workers 1 2]

Each cycle starts the gateway on one port and one database, lets the writers record
payments for a random moment, then kills every gateway process with SIGKILL. Each
payment has its own Idempotency-Key (also written in its notes) and is retried with
that key on a connection error, a timeout, 409 or 503, across restarts, until it is
acknowledged. After the last cycle the gateway starts once more, the writers finish the
payments they hold, and the ledger is read back through the admin API: every
acknowledged payment must be there, none twice, and each invoice's due amount must be
its total less its live payments. Runs every store and worker count named (SQLite on a
new file, PostgreSQL on a throwaway server it starts, as the tests do) and prints the
figures as a markdown table.

With `--events`, a webhook subscriber (an aiohttp receiver in this process, checking each
delivery's signature with `standardwebhooks`) takes every event, and the check also reads
the change feed: each acknowledged payment must have its `payment.created` event, and
each event of the feed must have reached the subscriber at least once, once its last
lease ran out; the events it got more than once (sent again after a kill) are counted.

With `--relay DIALECT` the tenant relays to a second gateway (ledger mode, never
killed) spoken to in that dialect; once every forward is settled, the backend's
payments are counted against the acknowledged ones: with a backend that takes
idempotency keys (xero) they must match exactly, without (harvest) any duplicate the
relay's look-before-resend missed is reported.

With `--server-kills` it is the PostgreSQL server that dies, not the gateways:
`--gateways` gateways (each of `--workers` processes) share one database on the
throwaway server, the writers spread over them, and each cycle stops the server
with an immediate shutdown (as a crash: no checkpoint, every session cut) for a
random moment under the load, then starts it again (crash recovery). The gateways
are never restarted: each must acknowledge a payment after every restart of the
server (how long that took is printed), every acknowledged payment must be in the
ledger, none twice. A gateway that exits, or
writers still unanswered `RECOVERY_SECONDS` after the last restart, fail the run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import aiohttp
import yaml
from aiohttp import web
from standardwebhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError

import dialects
from benchmarks.harness import ADMIN, XERO_TENANT, bench_config, free_port, relay_settled

HARVEST = {"Authorization": "Basic " + base64.b64encode(b"bench@example.com:bench").decode()}
FASTBILL = HARVEST
INVOILESS = {"api-key": "bench-key"}
TOTAL = Decimal("1000000.00")
AMOUNT = "1.00"
RETRIED = (409, 503)
SECRET = "whsec_" + base64.b64encode(b"crash-harness-webhook-key-32byte").decode()
# How long the subscriber may take, after the last restart, to have every event.
DELIVERY_SECONDS = 60.0
# The bench tenant's credentials at a relay backend, by the backend's dialect.
RELAY_CREDENTIALS = {
    "harvest": {"user": "bench@example.com", "password": "bench"},
    "xero": {"client_id": "bench-xero", "client_secret": "bench", "tenant_id": XERO_TENANT},
}
SETTLE_SECONDS = 60.0  # the longest the relay may take to forward the rest after the last kill
RECOVERY_SECONDS = 60.0  # the longest the writers may wait for gateways after the server is back


@dataclass
class Tally:
    acknowledged: dict[str, int] = field(default_factory=dict)  # key -> payment id
    retries: int = 0
    replays: int = 0
    unexpected: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Figures:
    store: str
    workers: int
    cycles: int
    writers: int
    acknowledged: int
    retries: int
    lost: int
    duplicated: int
    unacknowledged: int
    wrong_due: int
    unexpected: int
    seconds: float
    events: Deliveries | None = None
    relay: str = "-"  # the relay backend's dialect, if the tenant relays
    relayed: int = 0  # payments at the relay backend
    relay_missing: int = 0
    relay_duplicated: int = 0
    restart_seconds: float = 0.0  # --server-kills: the server's longest restart
    recovery_seconds: float = 0.0  # and the longest a gateway then took to acknowledge

    @property
    def ok(self) -> bool:
        failures = (self.lost, self.duplicated, self.unacknowledged, self.wrong_due)
        events = self.events is None or self.events.ok
        relay = not self.relay_missing
        return not any(failures) and not self.unexpected and events and relay

    @staticmethod
    def header() -> str:
        return (
            "| store | workers | cycles | writers | acknowledged | retried | lost | duplicated"
            " | unacknowledged | wrong due | relay | relayed | relay missing | relay duplicated"
            " | seconds | events | without event"
            " | lost at subscriber | delivered twice or more | bad signatures |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
        )

    def row(self) -> str:
        shown = self.events.cells() if self.events is not None else "| - | - | - | - | - |"
        return (
            f"| {self.store} | {self.workers} | {self.cycles} | {self.writers}"
            f" | {self.acknowledged} | {self.retries} | {self.lost} | {self.duplicated}"
            f" | {self.unacknowledged} | {self.wrong_due} | {self.relay} | {self.relayed}"
            f" | {self.relay_missing} | {self.relay_duplicated} | {self.seconds:.0f} {shown}"
        )


@dataclass(frozen=True)
class Deliveries:
    """The events' figures: the feed's events, acknowledged payments without their
    `payment.created`, events the subscriber never got, events it got more than once
    (and the extra receipts), and deliveries whose signature did not verify."""

    events: int
    without_event: int
    lost: int
    redelivered: int
    extra: int
    bad_signatures: int

    @property
    def ok(self) -> bool:
        return not (self.without_event or self.lost or self.bad_signatures)

    def cells(self) -> str:
        return (
            f"| {self.events} | {self.without_event} | {self.lost}"
            f" | {self.redelivered} ({self.extra} extra) | {self.bad_signatures} |"
        )


class Subscriber:
    """A webhook receiver: verifies each delivery (`standardwebhooks`), counts it by id."""

    def __init__(self) -> None:
        self.got: Counter[str] = Counter()
        self.bad = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            Verifier(SECRET).verify(body, dict(request.headers))
        except WebhookVerificationError:
            self.bad += 1
            return web.Response(status=400)
        self.got[request.headers["webhook-id"]] += 1
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks", self.receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}/hooks"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def feed(session: aiohttp.ClientSession, base: str) -> list[dict[str, Any]]:
    """Every event of the bench tenant, read page by page from the change feed."""
    events: list[dict[str, Any]] = []
    after = 0
    while True:
        url = f"{base}/gateway/v1/events?tenant=bench&after={after}&limit=100"
        async with session.get(url, headers=ADMIN) as response:
            assert response.status == 200, await response.text()
            page = await response.json()
        if not page["events"]:
            return events
        events += page["events"]
        after = page["next"]


async def check_events(
    session: aiohttp.ClientSession, base: str, tally: Tally, subscriber: Subscriber
) -> Deliveries:
    """Each acknowledged payment's event in the feed; each event at the subscriber."""
    events = await feed(session, base)
    created = {e["data"]["payment"]["id"] for e in events if e["type"] == "payment.created"}
    without = sum(number not in created for number in tally.acknowledged.values())
    wanted = {event["id"] for event in events}
    deadline = time.monotonic() + DELIVERY_SECONDS
    while not wanted <= subscriber.got.keys() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)  # a killed process's deliveries wait out their lease
    twice = [count for count in subscriber.got.values() if count > 1]
    return Deliveries(
        len(events), without, len(wanted - subscriber.got.keys()), len(twice),
        sum(twice) - len(twice), subscriber.bad,
    )  # fmt: skip


def request(base: str, dialect: str, invoice: int, key: str) -> tuple[str, bytes, dict[str, str]]:
    """(url, body, headers) of a keyed create of AMOUNT with the key in its notes."""
    if dialect == "harvest":
        body = (
            f'<payment><paid-at type="datetime">2026-11-20T00:00:00Z</paid-at>'
            f'<amount type="decimal">{AMOUNT}</amount><notes>{key}</notes></payment>'
        )
        headers = {**HARVEST, "Content-Type": "application/xml"}
        return f"{base}/invoices/{invoice}/payments", body.encode(), headers
    if dialect == "fastbill":
        body = (
            f"<invoice-payment><invoice_id>{invoice}</invoice_id><date>2026-11-20</date>"
            f"<amount>{AMOUNT}</amount><comment>{key}</comment><type>CASH</type>"
            f"</invoice-payment>"
        )
        headers = {**FASTBILL, "Content-Type": "application/xml"}
        return f"{base}/api/invoice-payments", body.encode(), headers
    document = {"amount": float(AMOUNT), "method": "Cash", "paidAt": "2026-11-20", "notes": key}
    headers = {**INVOILESS, "Content-Type": "application/json"}
    return f"{base}/v1/invoices/{invoice}/payments", json.dumps(document).encode(), headers


def created_id(dialect: str, body: bytes) -> int:
    if dialect == "invoiless":
        return int(json.loads(body)["id"])
    return int(ElementTree.fromstring(body).findtext("id") or "0")


class Gateway:
    """The gateway's processes on one port; `kill` is SIGKILL to all of them at once."""

    def __init__(self, config: Path, port: int, workers: int, log: Path) -> None:
        self.command = [sys.executable, "-m", "gateway", "--config", str(config)]
        self.command += ["--port", str(port)]
        if workers > 1:
            self.command += ["--workers", str(workers)]
        self.base = f"http://127.0.0.1:{port}"
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self, session: aiohttp.ClientSession) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited; see {self.log}")
            try:
                async with session.get(f"{self.base}/healthz") as response:
                    if response.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.05)
        raise RuntimeError(f"gateway did not start; see {self.log}")

    def kill(self) -> None:
        assert self.process is not None
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


async def write(
    session: aiohttp.ClientSession, base: str, dialect: str, invoice: int, key: str, tally: Tally
) -> None:
    """One payment, retried with its key until acknowledged."""
    url, body, headers = request(base, dialect, invoice, key)
    headers["Idempotency-Key"] = key
    while True:
        try:
            async with session.post(url, data=body, headers=headers) as response:
                answer = await response.read()
                status = response.status
                replayed = response.headers.get("Idempotent-Replayed") == "true"
        except (aiohttp.ClientError, TimeoutError):
            status = 0
        if status == 201:
            tally.acknowledged[key] = created_id(dialect, answer)
            tally.replays += replayed
            return
        if status and status not in RETRIED:
            tally.unexpected.append(f"{key}: {status} {answer[:200]!r}")
            return
        tally.retries += 1
        await asyncio.sleep(0.02)


async def writer(
    number: int, base: str, invoices: list[int], tally: Tally, stop: asyncio.Event
) -> None:
    dialects = ("harvest", "fastbill", "invoiless")
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for index in range(1_000_000):
            if stop.is_set():
                return
            key = f"w{number}-{index}-{random.getrandbits(32):08x}"
            dialect = dialects[(number + index) % len(dialects)]
            await write(session, base, dialect, invoices[index % len(invoices)], key, tally)


async def new_invoices(
    session: aiohttp.ClientSession, base: str, count: int, backend: list[str] | None = None
) -> list[int]:
    """`count` invoices; with `backend`, each names that backend invoice (a relay's)."""
    ids = []
    for number in range(count):
        body: dict[str, Any] = {
            "tenant": "bench",
            "number": f"CRASH-{number}",
            "currency": "EUR",
            "total": str(TOTAL),
            "issued_on": "2026-01-01",
            "due_on": "2999-12-31",
        }
        if backend is not None:
            body["backend_invoice_id"] = str(backend[number])
        async with session.post(f"{base}/gateway/v1/invoices", json=body, headers=ADMIN) as r:
            assert r.status == 201, await r.text()
            ids.append((await r.json())["id"])
    return ids


async def check(
    session: aiohttp.ClientSession, base: str, invoices: list[int], tally: Tally
) -> tuple[int, int, int, int]:
    """(lost, duplicated, unacknowledged, invoices whose due amount is wrong)."""
    live: dict[int, str] = {}
    notes: Counter[str] = Counter()
    wrong_due = 0
    for invoice in invoices:
        async with session.get(f"{base}/gateway/v1/invoices/{invoice}", headers=ADMIN) as r:
            data: dict[str, Any] = await r.json()
        paid = sum((Decimal(p["amount"]) for p in data["payments"]), Decimal(0))
        wrong_due += Decimal(data["due_amount"]) != Decimal(data["total"]) - paid
        for payment in data["payments"]:
            live[payment["id"]] = payment["notes"]
            notes[payment["notes"]] += 1
    lost = sum(live.get(number) != key for key, number in tally.acknowledged.items())
    duplicated = sum(count - 1 for count in notes.values())
    unacknowledged = sum(key not in tally.acknowledged for key in notes)
    return lost, duplicated, unacknowledged, wrong_due


async def relay_backend(workdir: Path, session: aiohttp.ClientSession) -> Gateway:
    """The relay's backend: a second gateway in ledger mode on a database of its own."""
    config = bench_config(database=f"sqlite:///{workdir / 'relay-backend.db'}")
    path = workdir / "relay-backend.yaml"
    path.write_text(yaml.safe_dump(config))
    backend = Gateway(path, free_port(), 1, workdir / "relay-backend.log")
    await backend.start(session)
    return backend


async def relay_counts(
    session: aiohttp.ClientSession, base: str, invoices: list[int], tally: Tally
) -> tuple[int, int, int]:
    """(payments at the backend, acknowledged ones missing there, ones there twice)."""
    found = 0
    for invoice in invoices:
        async with session.get(f"{base}/gateway/v1/invoices/{invoice}", headers=ADMIN) as r:
            found += len((await r.json())["payments"])
    acknowledged = len(tally.acknowledged)
    return found, max(acknowledged - found, 0), max(found - acknowledged, 0)


async def run(
    database: str,
    *,
    cycles: int = 20,
    writers: int = 8,
    workers: int = 1,
    window: tuple[float, float] = (0.2, 0.8),
    workdir: Path,
    events: bool = False,
    relay: str | None = None,
) -> Figures:
    """`cycles` kill -9s under `writers` concurrent keyed writers, then the check; with
    `events`, a webhook subscriber too, and the events' check; with `relay`, the tenant
    relays to a backend in that dialect, counted there at the end."""
    started = time.monotonic()
    config = bench_config(
        database=database, idempotency={"lease_seconds": 1}, events={"lease_seconds": 1}
    )
    subscriber = Subscriber()
    if events:
        await subscriber.start()
        hook = {"name": "crash", "url": subscriber.url, "secret": SECRET, "retry_schedule": [1]}
        config["tenants"]["bench"]["webhooks"] = [hook]
    path = workdir / "crash.yaml"
    gateway = Gateway(path, free_port(), workers, workdir / "crash.log")
    tally, stop = Tally(), asyncio.Event()
    delivered = None
    backend: Gateway | None = None
    relayed = (0, 0, 0)
    named: list[str] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        backend_invoices: list[int] | None = None
        if relay is not None:
            backend = await relay_backend(workdir, session)
            backend_invoices = await new_invoices(session, backend.base, 4)
            wire = dialects.get(relay).wire_id
            named = [str(wire(number)) for number in backend_invoices]
            config["tenants"]["bench"]["relay"] = {
                "dialect": relay, "url": backend.base, **RELAY_CREDENTIALS[relay],
                "retries": 0, "timeout": 2, "retry_schedule": [0.5] * 40,
            }  # fmt: skip
        path.write_text(yaml.safe_dump(config))
        await gateway.start(session)
        invoices = await new_invoices(session, gateway.base, 4, named if relay else None)
        tasks = [
            asyncio.create_task(writer(n, gateway.base, invoices, tally, stop))
            for n in range(writers)
        ]
        try:
            for cycle in range(cycles):
                if cycle:
                    await gateway.start(session)
                await asyncio.sleep(random.uniform(*window))
                gateway.kill()
            await gateway.start(session)
            stop.set()
            await asyncio.gather(*tasks)
            lost, duplicated, unacknowledged, wrong_due = await check(
                session, gateway.base, invoices, tally
            )
            if events:
                delivered = await check_events(session, gateway.base, tally, subscriber)
            if backend is not None and backend_invoices is not None:
                await relay_settled(session, gateway.base, "bench", SETTLE_SECONDS)
                relayed = await relay_counts(session, backend.base, backend_invoices, tally)
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
            gateway.stop()
            await subscriber.stop()
            if backend is not None:
                backend.stop()
    store = database.split(":", 1)[0]
    return Figures(
        store, workers, cycles, writers, len(tally.acknowledged), tally.retries, lost,
        duplicated, unacknowledged, wrong_due, len(tally.unexpected),
        time.monotonic() - started, delivered, relay or "-", *relayed,
    )  # fmt: skip


async def server_kills(
    database: str,
    crash: Callable[[], None],
    restart: Callable[[], None],
    *,
    cycles: int = 20,
    writers: int = 8,
    gateways: int = 2,
    workers: int = 1,
    window: tuple[float, float] = (0.2, 0.8),
    down: tuple[float, float] = (0.0, 0.5),
    workdir: Path,
) -> Figures:
    """`cycles` crashes of the database server (`crash`, then `restart` after a moment
    `down`) under `writers` keyed writers spread over `gateways` gateways that stay up."""
    started = time.monotonic()
    path = workdir / "crash.yaml"
    path.write_text(
        yaml.safe_dump(bench_config(database=database, idempotency={"lease_seconds": 1}))
    )
    fleet = [
        Gateway(path, free_port(), workers, workdir / f"crash-{number}.log")
        for number in range(gateways)
    ]
    tally, stop = Tally(), asyncio.Event()
    restarted = recovered = 0.0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        for gateway in fleet:
            await gateway.start(session)
        invoices = await new_invoices(session, fleet[0].base, 4)
        tasks = [
            asyncio.create_task(writer(n, fleet[n % gateways].base, invoices, tally, stop))
            for n in range(writers)
        ]
        try:
            for _ in range(cycles):
                await asyncio.sleep(random.uniform(*window))
                await asyncio.to_thread(crash)
                await asyncio.sleep(random.uniform(*down))
                begun = time.monotonic()
                await asyncio.to_thread(restart)
                back = time.monotonic()
                restarted = max(restarted, back - begun)
                answered = await asyncio.gather(
                    *(answers(session, number, gateway, invoices[0], tally) for number, gateway in enumerate(fleet))
                )  # fmt: skip
                recovered = max(recovered, *(moment - back for moment in answered))
            stop.set()
            _, pending = await asyncio.wait(tasks, timeout=RECOVERY_SECONDS)
            if pending:
                tally.unexpected.append(f"{len(pending)} writers unanswered after the restart")
            for number, gateway in enumerate(fleet):
                assert gateway.process is not None
                if gateway.process.poll() is not None:
                    tally.unexpected.append(f"gateway {number} exited: see {gateway.log}")
            lost, duplicated, unacknowledged, wrong_due = await check(
                session, fleet[0].base, invoices, tally
            )
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
            for gateway in fleet:
                gateway.stop()
    return Figures(
        f"postgresql, server killed, {gateways} gateways", workers, cycles, writers,
        len(tally.acknowledged), tally.retries, lost, duplicated, unacknowledged, wrong_due,
        len(tally.unexpected), time.monotonic() - started,
        restart_seconds=restarted, recovery_seconds=recovered,
    )  # fmt: skip


async def answers(
    session: aiohttp.ClientSession, number: int, gateway: Gateway, invoice: int, tally: Tally
) -> float:
    """When `gateway` acknowledged a keyed payment (retried meanwhile), never restarted;
    a gateway that does not within RECOVERY_SECONDS is noted as unexpected."""
    key = f"probe-{number}-{random.getrandbits(32):08x}"
    try:
        await asyncio.wait_for(
            write(session, gateway.base, "invoiless", invoice, key, tally), RECOVERY_SECONDS
        )
    except TimeoutError:
        tally.unexpected.append(f"gateway {number} never answered: see {gateway.log}")
    return time.monotonic()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--stores", nargs="+", choices=("sqlite", "postgresql"))
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--events", action="store_true", help="with a webhook subscriber")
    parser.add_argument("--relay", choices=sorted(RELAY_CREDENTIALS), default=None)
    parser.add_argument("--server-kills", action="store_true", help="kill PostgreSQL instead")
    parser.add_argument("--gateways", type=int, default=2, help="--server-kills: gateways")
    args = parser.parse_args()
    print(Figures.header())
    if args.server_kills:
        sys.exit(
            0 if killing_the_server(args.cycles, args.writers, args.gateways, args.workers) else 1
        )
    ok = True
    for store in args.stores or ("sqlite", "postgresql"):
        with databases(store) as fresh:
            for workers in args.workers:
                with tempfile.TemporaryDirectory() as tmp:
                    figures = asyncio.run(
                        run(
                            fresh(Path(tmp)),
                            cycles=args.cycles,
                            writers=args.writers,
                            workers=workers,
                            workdir=Path(tmp),
                            events=args.events,
                            relay=args.relay,
                        )
                    )
                print(figures.row(), flush=True)
                ok = ok and figures.ok
    sys.exit(0 if ok else 1)


def killing_the_server(cycles: int, writers: int, gateways: int, workers: list[int]) -> bool:
    """`server_kills` at each worker count, on a throwaway server (durable) of its own."""
    from tests.postgres import Cluster  # the tests' throwaway server

    cluster = Cluster(durable=True).start()
    ok = True
    slowest: list[Figures] = []
    try:
        for count in workers:
            with tempfile.TemporaryDirectory() as tmp:
                figures = asyncio.run(
                    server_kills(
                        cluster.url(cluster.create()), cluster.crash, cluster.restart,
                        cycles=cycles, writers=writers, gateways=gateways, workers=count,
                        workdir=Path(tmp),
                    )
                )  # fmt: skip
            print(figures.row(), flush=True)
            ok = ok and figures.ok
            slowest.append(figures)
    finally:
        cluster.stop()
    for figures in slowest:
        print(
            f"\nworkers {figures.workers}: the longest restart of the server took"
            f" {figures.restart_seconds:.2f} s; the longest a gateway took after it to"
            f" acknowledge a payment, {figures.recovery_seconds:.2f} s"
        )
    return ok


@contextmanager
def databases(store: str) -> Iterator[Callable[[Path], str]]:
    """Fresh database URLs of one engine: SQLite files, or schemas of a throwaway server."""
    if store == "sqlite":
        yield lambda directory: f"sqlite:///{directory / 'crash.db'}"
        return
    from tests.postgres import Cluster  # the tests' throwaway server, durable here

    cluster = Cluster(durable=True).start()
    try:
        yield lambda directory: cluster.url(cluster.create())
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
