"""Prometheus metrics: what the gateway counts and times, and `GET /metrics` to scrape them.

One process: the figures live in this process's default registry. Several worker
processes (`--workers`): the supervisor points `PROMETHEUS_MULTIPROC_DIR` at a fresh
directory before any worker starts (`prepare_workers`); each worker then writes its
figures there, and whichever worker answers a scrape adds up those of all of them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

_MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
# Seconds: a create is a few milliseconds; a slow backend call seconds.
_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

REQUESTS = Counter(
    "gateway_requests",
    "Requests answered, by dialect, operation and status",
    ["dialect", "operation", "status"],
)
REQUEST_SECONDS = Histogram(
    "gateway_request_duration_seconds",
    "Time to answer a request, by dialect and operation",
    ["dialect", "operation"],
    buckets=_LATENCY,
)
IN_FLIGHT = Gauge(
    "gateway_requests_in_flight", "Requests being served", multiprocess_mode="livesum"
)
BACKEND_CALLS = Counter(
    "gateway_backend_calls",
    "Calls to proxied backends, by backend dialect and outcome",
    ["backend", "outcome"],
)
BACKEND_SECONDS = Histogram(
    "gateway_backend_call_duration_seconds",
    "Time a backend took to answer, by backend dialect",
    ["backend"],
    buckets=_LATENCY,
)
BREAKER = Gauge(
    "gateway_backend_breaker_state",
    "Each proxy tenant's backend circuit breaker: 0 closed, 1 half-open, 2 open",
    ["tenant", "backend"],
    multiprocess_mode="livemax",
)
STORE_WRITE_SECONDS = Histogram(
    "gateway_store_write_duration_seconds",
    "Time from a write's submission to its durable commit",
    buckets=_LATENCY,
)
STORE_BATCH = Histogram(
    "gateway_store_commit_batch_size",
    "Writes committed together by one group commit",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
AUTH_FAILURES = Counter(
    "gateway_auth_failures", "Refused credentials (401 and 403), by dialect", ["dialect"]
)
RATE_LIMITED = Counter(
    "gateway_rate_limited",
    "Requests refused by a rate limit, by dialect and limit (credential or address)",
    ["dialect", "limit"],
)

CONNECTIONS_CLOSED = Counter(
    "gateway_connections_closed",
    "Connections the gateway aborted, by reason (write_timeout: a client not reading)",
    ["reason"],
)

SECRET_CHECKS = Counter(
    "gateway_secret_checks",
    "Secrets checked that were not proven before, by form (plain or scrypt)",
    ["form"],
)

EVENTS_WRITTEN = Counter(
    "gateway_events_written",
    "Events appended to the outbox by committed ledger changes, by type",
    ["type"],
)
WEBHOOK_DELIVERIES = Counter(
    "gateway_webhook_deliveries",
    "Webhook delivery attempts by tenant, webhook and outcome (delivered; retry: failed,"
    " tried again later; failed: the retry schedule spent; disabled: the receiver said 410)",
    ["tenant", "webhook", "outcome"],
)
WEBHOOK_ATTEMPTS = Counter(
    "gateway_webhook_attempts",
    "Webhook requests sent, by tenant and webhook",
    ["tenant", "webhook"],
)
WEBHOOK_LAG = Gauge(
    "gateway_webhook_lag_seconds",
    "Age of the oldest event a webhook is still owed (0: none), read from the store when scraped",
    ["tenant", "webhook"],
    multiprocess_mode="livemax",
)

WEBHOOK_PASSES = Counter(
    "gateway_webhook_passes",
    "Delivery passes by tenant, webhook and what they found (idle: nothing to do, nothing"
    " written; work: events fanned out or deliveries due; failed: the pass raised)",
    ["tenant", "webhook", "found"],
)
RELAY_ITEMS = Counter(
    "gateway_relay_items",
    "Relay outcomes by tenant and outcome (delivered; retry: failed, tried again later;"
    " failed: refused by the backend or the retry schedule spent; waiting: a delete"
    " waiting for its create)",
    ["tenant", "outcome"],
)
RELAY_ATTEMPTS = Counter(
    "gateway_relay_attempts",
    "Relay attempts made at the backend, by tenant",
    ["tenant"],
)

BREAKER_STATES = {"closed": 0, "half-open": 1, "open": 2}

M = TypeVar("M", Counter, Gauge, Histogram)
# Labelled children by metric and label values: `labels()` checks and joins its values
# under a lock on every call, a share of every request's cost.
_CHILDREN: dict[tuple[str, tuple[str, ...]], Any] = {}


def child(metric: M, *values: str) -> M:
    """`metric.labels(*values)`, looked up once."""
    found: M | None = _CHILDREN.get((metric._name, values))
    if found is None:
        found = _CHILDREN[metric._name, values] = metric.labels(*values)
    return found


_ALL = (
    REQUESTS, REQUEST_SECONDS, IN_FLIGHT, BACKEND_CALLS, BACKEND_SECONDS, BREAKER,
    STORE_WRITE_SECONDS, STORE_BATCH, AUTH_FAILURES, RATE_LIMITED, CONNECTIONS_CLOSED,
    SECRET_CHECKS, EVENTS_WRITTEN, WEBHOOK_DELIVERIES, WEBHOOK_ATTEMPTS, WEBHOOK_LAG,
    WEBHOOK_PASSES, RELAY_ITEMS, RELAY_ATTEMPTS,
)  # fmt: skip


def prepare_workers() -> Path:
    """For a supervisor, before it forks or starts workers: a fresh directory they share.

    Workers started afresh read the directory from the environment. Workers forked
    from this process inherit metrics made when this module was imported, whose values
    live in this process's memory: they are remade here over the directory's files
    (prometheus-client keeps one file per process, and a forked child starts its own).
    """
    directory = Path(tempfile.mkdtemp(prefix="gateway-metrics-"))
    os.environ[_MULTIPROCESS] = str(directory)
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    _CHILDREN.clear()
    for metric in _ALL:
        if metric._labelnames:
            metric._metrics.clear()  # labelled children are made anew, on first use
        else:
            metric._metric_init()
    return directory


def worker_exited(pid: int) -> None:
    """For a supervisor: drop a dead worker's live gauges (its counters stay counted)."""
    if os.environ.get(_MULTIPROCESS):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def exposition() -> bytes:
    """Every figure in the Prometheus text format, added up over all workers."""
    if os.environ.get(_MULTIPROCESS):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)
