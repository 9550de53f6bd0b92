"""Request ids, log lines, metrics and readiness, as an operator meets them."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from gateway.serving.app import create_app
from gateway.serving.state import GATEWAY

from ..conftest import AiohttpClient, Client
from ..http.server import ADMIN_TOKEN, running, write_config
from ..support import ADMIN, make_config, new_invoice, tenant_config

INVOILESS = {"api-key": "acme-invoiless"}


def logged(caplog: pytest.LogCaptureFixture, name: str) -> list[dict[str, Any]]:
    return [
        {"level": r.levelname, **getattr(r, "fields", {})}
        for r in caplog.records
        if r.name == "gateway" and r.msg == name
    ]


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("abc-123", True),
        ("4bf92f3577b34da6a3ce929d0e0e4736", True),
        ("has space", False),
        ("x" * 129, False),
        ("", False),
        (None, False),
    ],
)
async def test_a_valid_request_id_is_echoed_and_any_other_replaced(
    client: Client, sent: str | None, kept: bool
) -> None:
    headers = {} if sent is None else {"X-Request-Id": sent}

    reply = await client.get("/healthz", headers=headers)

    echoed = reply.headers["X-Request-Id"]
    if kept:
        assert echoed == sent
    else:
        assert re.fullmatch(r"[0-9a-f]{32}", echoed), echoed


async def test_every_answer_carries_a_fresh_request_id(client: Client) -> None:
    ids = {(await client.get("/v1/payments/1")).headers["X-Request-Id"] for _ in range(3)}

    assert len(ids) == 3


async def test_the_access_log_line_names_tenant_dialect_operation_and_status(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    invoice = await new_invoice(client)
    with caplog.at_level(logging.INFO, logger="gateway"):
        reply = await client.get(f"/v1/invoices/{invoice['id']}/payments", headers=INVOILESS)

    [line] = [
        line
        for line in logged(caplog, "request")
        if line["request_id"] == reply.headers["X-Request-Id"]
    ]
    assert (line["tenant"], line["dialect"], line["operation"], line["status"]) == (
        "acme",
        "invoiless",
        "list",
        200,
    )
    assert (line["method"], line["path"]) == ("GET", f"/v1/invoices/{invoice['id']}/payments")
    assert line["duration_ms"] >= 0 and line["backend_status"] is None


def test_json_log_lines_carry_the_fields_an_operator_filters_on(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    raw = config.read_text(encoding="utf-8").replace("access_log: false", "access_log: true")
    config.write_text(raw, encoding="utf-8")
    args = ("serve", "--log-format", "json", "--log-level", "debug")
    with running(config, tmp_path / "x.db", tmp_path / "x.log", args) as server:
        server.wait_ready()
        server.wait_for('"path":"/healthz"')

    lines = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
    request = next(line for line in lines if line["event"] == "request")
    required = {"time", "level", "event", "request_id", "tenant", "dialect", "operation"}
    assert required | {"status", "duration_ms"} <= set(request)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", request["time"])
    assert (request["level"], request["status"], request["operation"]) == ("info", 200, "healthz")


async def test_failed_logins_past_the_limit_log_one_lockout(
    aiohttp_client: AiohttpClient, database: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(database, server={"auth_failures": {"per_second": 0.01, "burst": 3}})
    client = await aiohttp_client(create_app(config))
    with caplog.at_level(logging.INFO, logger="gateway"):
        statuses = [
            (await client.get("/v1/payments/1", headers={"api-key": "wrong"})).status
            for _ in range(5)
        ]

    assert statuses == [401, 401, 401, 429, 429]
    [lockout] = logged(caplog, "auth_lockout")
    assert lockout["level"] == "WARNING" and lockout["path"] == "/v1/payments/1"


async def test_a_tenant_over_its_rate_limit_is_logged(
    aiohttp_client: AiohttpClient, database: str, caplog: pytest.LogCaptureFixture
) -> None:
    tenants = {"acme": tenant_config("acme", rate_limit={"per_second": 0.01, "burst": 1})}
    client = await aiohttp_client(create_app(make_config(database, tenants=tenants)))
    with caplog.at_level(logging.INFO, logger="gateway"):
        statuses = [(await client.get("/v1/payments/1", headers=INVOILESS)).status for _ in "ab"]

    assert statuses == [404, 429]
    assert logged(caplog, "rate_limited") == [
        {
            "level": "WARNING",
            "tenant": "acme",
            "dialect": "invoiless",
            "request_id": logged(caplog, "request")[1]["request_id"],
        }
    ]


def families(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def value(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


async def test_metrics_need_the_admin_token(client: Client) -> None:
    assert (await client.get("/metrics")).status == 401
    assert (await client.get("/metrics", headers={"Authorization": "Bearer no"})).status == 401

    reply = await client.get("/metrics", headers=ADMIN)

    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/plain; version=")


async def test_public_metrics_need_no_token(aiohttp_client: AiohttpClient, database: str) -> None:
    client = await aiohttp_client(create_app(make_config(database, metrics={"public": True})))

    assert (await client.get("/metrics")).status == 200


async def test_metrics_count_requests_latency_auth_failures_and_store_writes(
    client: Client,
) -> None:
    before = await (await client.get("/metrics", headers=ADMIN)).text()
    invoice = await new_invoice(client)
    await client.get(f"/v1/invoices/{invoice['id']}/payments", headers=INVOILESS)
    await client.get("/v1/payments/1", headers={"api-key": "wrong"})

    after = await (await client.get("/metrics", headers=ADMIN)).text()

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    listed = {"dialect": "invoiless", "operation": "list"}
    assert grew("gateway_requests_total", status="200", **listed) == 1
    assert grew("gateway_request_duration_seconds_count", **listed) == 1
    assert grew("gateway_requests_total", dialect="admin", operation="create_invoice") == 1
    assert grew("gateway_auth_failures_total", dialect="invoiless") == 1
    assert grew("gateway_store_write_duration_seconds_count") >= 1
    assert grew("gateway_store_commit_batch_size_count") >= 1
    names = set(families(after))
    for family in ("gateway_backend_calls", "gateway_backend_call_duration_seconds",
                   "gateway_backend_breaker_state", "gateway_rate_limited",
                   "gateway_requests_in_flight"):  # fmt: skip
        assert family in names, family


async def test_readyz_is_200_while_the_store_answers_and_503_with_the_reason_after(
    client: Client,
) -> None:
    ready = await client.get("/readyz", headers=ADMIN)
    assert (ready.status, await ready.json()) == (
        200,
        {"status": "ready", "store": "ok", "backends": {}},
    )

    await client.app[GATEWAY].store.close()
    unready = await client.get("/readyz", headers=ADMIN)

    body = await unready.json()
    assert unready.status == 503
    assert body["status"] == "unavailable"
    assert body["reason"].startswith("the store did not answer: ")
    assert (await client.get("/healthz")).status == 200  # liveness touches no store


async def test_readyz_without_the_admin_token_says_its_status_alone(client: Client) -> None:
    ready = await client.get("/readyz")
    assert (ready.status, await ready.json()) == (200, {"status": "ready"})

    await client.app[GATEWAY].store.close()
    unready = await client.get("/readyz")

    assert (unready.status, await unready.json()) == (503, {"status": "unavailable"})


async def test_readyz_with_a_wrong_token_is_refused_as_the_admin_api_refuses(
    client: Client,
) -> None:
    reply = await client.get("/readyz", headers={"Authorization": "Bearer not-the-token"})
    admin = await client.get("/gateway/v1/invoices/1", headers={"Authorization": "Bearer no"})

    assert reply.status == admin.status == 401
    assert (await reply.json()).keys() == (await admin.json()).keys()


def test_a_process_serves_metrics_to_the_admin_token(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with running(config, tmp_path / "x.db", tmp_path / "x.log") as server:
        server.wait_ready()
        request = urllib.request.Request(
            f"{server.url}/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read().decode()

    assert value(text, "gateway_requests_total", operation="healthz", status="200") >= 1


async def test_disabled_metrics_count_nothing_and_are_not_served(
    aiohttp_client: AiohttpClient, database: str
) -> None:
    client = await aiohttp_client(create_app(make_config(database, metrics={"enabled": False})))
    labels = {"dialect": "none", "operation": "healthz", "status": "200"}
    before = REGISTRY.get_sample_value("gateway_requests_total", labels) or 0.0

    await client.get("/healthz")

    assert (REGISTRY.get_sample_value("gateway_requests_total", labels) or 0.0) == before
    assert (await client.get("/metrics", headers=ADMIN)).status == 404


def test_processes_sharing_a_metrics_directory_are_scraped_as_one(tmp_path: Path) -> None:
    """What `--workers` relies on: any worker's scrape adds up every worker's figures."""
    config = write_config(tmp_path)
    shared = tmp_path / "metrics"
    shared.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(shared)}
    with running(config, tmp_path / "x.db", tmp_path / "a.log", env=env) as first:
        first.wait_ready()  # one at a time: a busy machine starts two slowly
        with running(config, tmp_path / "x.db", tmp_path / "b.log", env=env) as second:
            for server, calls in ((first, 2), (second.wait_ready(), 3)):
                for _ in range(calls):
                    urllib.request.urlopen(f"{server.url}/readyz", timeout=10).close()
        request = urllib.request.Request(
            f"{first.url}/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read().decode()

    assert value(text, "gateway_requests_total", operation="readyz", status="200") == 5


FORKED_WORKERS = """
import os
from gateway.observability import metrics

metrics.prepare_workers()  # as a supervisor does before it forks
for _ in range(3):
    if os.fork() == 0:
        metrics.REQUESTS.labels("invoiless", "list", "200").inc()
        metrics.STORE_BATCH.observe(2)
        os._exit(0)
    os.wait()
print(metrics.exposition().decode())
"""


def test_workers_forked_after_prepare_workers_are_scraped_as_one() -> None:
    result = subprocess.run(
        [sys.executable, "-c", FORKED_WORKERS], capture_output=True, timeout=60, check=True
    )

    text = result.stdout.decode()
    assert value(text, "gateway_requests_total", dialect="invoiless", status="200") == 3
    assert value(text, "gateway_store_commit_batch_size_count") == 3
