"""Any batch, against a model: summarised it is stored whole or refused whole; item by item
each item is stored or refused on its own; with a key, a retry changes nothing and gets
the same bytes. On a gateway process over each store."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialects import testing
from dialects.testing import Answer

from ..conftest import ENGINES
from ..http.server import ADMIN_TOKEN, Server, running, send, write_config

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}
XERO = testing.support("xero")
MISSING = 10**9  # an invoice no one has
AMOUNTS = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("12"), places=2)
NUMBERS = itertools.count(1)


@pytest.fixture(scope="module", params=ENGINES)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp(f"batches-{request.param}")
    database: Any = directory / "ledger.db"
    if request.param != "sqlite":
        cluster = request.getfixturevalue("postgres")
        database = cluster.url(cluster.create())
    with running(write_config(directory), database, directory / "server.log") as started:
        yield started.wait_ready()
        assert "Traceback" not in started.output()


def admin(server: Server, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    answer = send(server.port, method, path, data, ADMIN)
    assert answer.status in (200, 201), answer.body
    return answer.json()


def due(server: Server, invoice: int) -> Decimal:
    return Decimal(admin(server, "GET", f"/gateway/v1/invoices/{invoice}")["due_amount"])


def put_batch(
    server: Server, items: list[tuple[int, Decimal]], query: str, key: str | None
) -> Answer:
    requests = [XERO.create("acme", invoice, str(amount)) for invoice, amount in items]
    body = XERO.batch([request.body or b"" for request in requests])
    headers = {**XERO.credentials("acme"), **requests[0].headers}
    if key is not None:
        headers["Idempotency-Key"] = key
    return send(server.port, "PUT", requests[0].path + query, body, headers)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    totals=st.lists(st.sampled_from(["10.00", "25.00"]), min_size=1, max_size=3),
    picks=st.lists(st.tuples(st.integers(0, 3), AMOUNTS), min_size=1, max_size=5),
    summarised=st.booleans(),
    keyed=st.booleans(),
)
def test_a_batch_is_stored_whole_refused_whole_or_item_by_item(
    server: Server,
    totals: list[str],
    picks: list[tuple[int, Decimal]],
    summarised: bool,
    keyed: bool,
) -> None:
    invoices = [
        admin(server, "POST", "/gateway/v1/invoices", {
            "tenant": "acme", "number": f"PB-{next(NUMBERS)}", "currency": "EUR",
            "total": total, "issued_on": "2026-01-01", "due_on": "2999-12-31",
        })["id"]
        for total in totals
    ]  # fmt: skip
    items = [(invoices[n] if n < len(invoices) else MISSING, amount) for n, amount in picks]
    # The model: each item in order, against what the items before it left due.
    dues = {invoice: Decimal(total) for invoice, total in zip(invoices, totals, strict=True)}
    after, accepted = dict(dues), []
    for invoice, amount in items:
        fits = invoice in after and amount <= after[invoice]
        accepted.append(fits)
        if fits:
            after[invoice] -= amount
    if summarised and not all(accepted):
        after = dues  # refused whole: nothing of it stored

    key = f"pb-{next(NUMBERS)}" if keyed else None
    query = "" if summarised else "?summarizeErrors=false"
    answer = put_batch(server, items, query, key)
    if summarised and not all(accepted):
        XERO.error(answer, 400, "validation")
    else:
        assert answer.status == 200, answer.body
        statuses = [e.get("status") for e in answer.xml().iterfind("Payments/Payment")]
        if summarised:
            assert statuses == [None] * len(items)
        else:
            assert statuses == ["OK" if fits else "ERROR" for fits in accepted]
    assert {invoice: due(server, invoice) for invoice in invoices} == after

    if keyed:
        again = put_batch(server, items, query, key)
        if answer.status == 200:
            assert (again.body, again.header("Idempotent-Replayed")) == (answer.body, "true")
        else:
            assert (again.status, again.header("Idempotent-Replayed")) == (400, None)
        assert {invoice: due(server, invoice) for invoice in invoices} == after
