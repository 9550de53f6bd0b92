"""Proxy mode seen by an operator: request ids at the backend, backend log lines, metrics."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from prometheus_client import REGISTRY

from gateway.serving.state import GATEWAY

from ..http.server import free_port
from ..support import ADMIN
from .conftest import ProxyFactory
from .fake import FakeBackend, dropped, raw_answer
from .harness import upstream
from .test_faults import list_as, proxied


def logged(caplog: pytest.LogCaptureFixture, name: str) -> list[dict[str, Any]]:
    """The fields of each `name` event the gateway logged."""
    return [
        {"level": r.levelname, **getattr(r, "fields", {})}
        for r in caplog.records
        if r.name == "gateway" and r.msg == name
    ]


def sample(name: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    return value or 0.0


async def test_the_request_id_reaches_the_backend_and_comes_back(
    make_proxy: ProxyFactory, fake: FakeBackend, caplog: pytest.LogCaptureFixture
) -> None:
    proxy, invoice = await proxied(make_proxy, fake)
    with caplog.at_level(logging.INFO, logger="gateway"):
        reply = await proxy.get(
            f"/v1/invoices/{invoice}/payments",
            headers={"api-key": "acme-invoiless", "X-Request-Id": "trace-me-42"},
        )

    assert reply.status == 200
    assert reply.headers["X-Request-Id"] == "trace-me-42"
    sent = [{k.lower(): v for k, v in seen.headers.items()} for seen in fake]
    assert [headers["x-request-id"] for headers in sent] == ["trace-me-42"]
    [line] = [line for line in logged(caplog, "request") if line["request_id"] == "trace-me-42"]
    assert (line["tenant"], line["dialect"], line["operation"]) == ("acme", "invoiless", "list")
    assert (line["status"], line["backend_status"]) == (200, 200)
    assert line["backend_ms"] >= 0 and line["duration_ms"] >= line["backend_ms"]


async def test_a_refused_connection_is_logged_with_its_retries_and_the_breaker_opening(
    make_proxy: ProxyFactory, fake: FakeBackend, caplog: pytest.LogCaptureFixture
) -> None:
    proxy, invoice = await proxied(
        make_proxy, fake, retries=1, breaker={"failures": 1, "reset_seconds": 60}
    )
    proxy.app[GATEWAY].proxies["acme"].client.base = f"http://127.0.0.1:{free_port()}"
    refused_before = sample("gateway_backend_calls_total", backend="invoiless", outcome="refused")
    with caplog.at_level(logging.INFO, logger="gateway"):
        reply = await list_as("invoiless", proxy, invoice)

    assert reply.status == 503
    failures = logged(caplog, "backend_failed")
    assert [(f["reason"], f["attempt"], f["level"]) for f in failures] == [
        ("refused", 1, "WARNING"),
        ("refused", 2, "WARNING"),
    ]
    assert [r["attempt"] for r in logged(caplog, "backend_retry")] == [2]
    assert logged(caplog, "breaker_open") == [
        {
            "level": "WARNING",
            "tenant": "acme",
            "backend": "invoiless",
            "request_id": failures[0]["request_id"],
        }
    ]
    refused_after = sample("gateway_backend_calls_total", backend="invoiless", outcome="refused")
    assert refused_after - refused_before == 2
    assert sample("gateway_backend_breaker_state", tenant="acme", backend="invoiless") == 2


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (raw_answer(b"{not json", 200, "application/json"), "unreadable answer"),
        (raw_answer(b"<html/>", 200, "text/html"), "unexpected content type"),
        (dropped, None),
    ],
)
async def test_garbage_and_dropped_answers_are_logged(
    make_proxy: ProxyFactory,
    fake: FakeBackend,
    caplog: pytest.LogCaptureFixture,
    answer: Any,
    reason: str | None,
) -> None:
    proxy, invoice = await proxied(make_proxy, fake)
    fake.answer = answer
    with caplog.at_level(logging.INFO, logger="gateway"):
        reply = await list_as("invoiless", proxy, invoice)

    assert reply.status == 502
    if reason is None:
        assert [f["reason"] for f in logged(caplog, "backend_failed")] == ["broken"]
    else:
        [garbage] = logged(caplog, "backend_garbage")
        assert reason in garbage["reason"] and garbage["level"] == "WARNING"
    assert [f["status"] for f in logged(caplog, "failed")] == [502]


async def test_readyz_names_each_backends_breaker_state(
    make_proxy: ProxyFactory, fake: FakeBackend
) -> None:
    proxy = await make_proxy(upstream("invoiless", fake.url))

    reply = await proxy.get("/readyz", headers=ADMIN)
    anonymous = await proxy.get("/readyz")

    assert reply.status == 200
    assert await reply.json() == {
        "status": "ready",
        "store": "ok",
        "backends": {"acme": {"dialect": "invoiless", "breaker": "closed"}},
    }
    assert (anonymous.status, await anonymous.json()) == (200, {"status": "ready"})
