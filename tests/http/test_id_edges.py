"""Ids at the edges of each dialect's id form, on every route that takes one: 404 or 400.

The routes come from the registry (every unit's route table, path parameters named
`*_id`, and ids its test client sends in a query string); the values from each
dialect's own id form pushed past its edges: the largest it can spell, zero, signs,
leading zeros, upper case, overlong strings. Each is answered in the caller's
dialect, never with a 500, by a real gateway process for each store.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import dialects
from dialects import testing
from dialects.unit import DialectUnit, Op, Route
from gateway.store import MAX_ID

from .server import ADMIN_TOKEN, Server, send, write_config

TENANT = "acme"
BODY_METHODS = ("POST", "PUT", "PATCH")
STORES = ["sqlite"]


@dataclass(frozen=True)
class Live:
    """The one invoice and payment the server holds, and its port."""

    port: int
    invoice: int
    payment: int


@dataclass(frozen=True)
class Slot:
    """One id a route takes: in its path (`{name}`) or in its query string (`name=`)."""

    dialect: str
    route: Route
    name: str
    in_query: bool = False

    def __str__(self) -> str:
        where = f"?{self.name}=" if self.in_query else f"{{{self.name}}}"
        return f"{self.dialect} {self.route.method} {self.route.path} {where}"


def slots() -> list[Slot]:
    found = []
    for name, unit in sorted(dialects.units().items()):
        for route in unit.routes:
            params = re.findall(r"\{(\w+_id)\}", route.path)
            found += [Slot(name, route, param) for param in params]
            if route.op is Op.LIST and not params:
                found += [Slot(name, route, query, True) for query in query_ids(unit)]
    return found


def query_ids(unit: DialectUnit) -> list[str]:
    """Query parameters the dialect's client fills with an invoice id (FastBill's list)."""
    support = testing.support(unit.name)
    query = urlsplit(support.listing(TENANT, 7).path).query
    wire = support.wire_id(7)
    return [k for k, _, v in (p.partition("=") for p in query.split("&") if p) if v == wire]


def edges(dialect: str) -> st.SearchStrategy[str]:
    """Ids just inside, at and past the edges of `dialect`'s id form."""
    codec = dialects.get(dialect)
    wire = st.integers(min_value=0, max_value=2**100).map(lambda n: str(codec.wire_id(n)))
    spelled = st.sampled_from(
        [str(codec.wire_id(n)) for n in (0, 1, MAX_ID, MAX_ID + 1, 16**24 - 1, 10**18 - 1)]
    )
    base = st.one_of(spelled, wire)
    return st.one_of(
        base,
        base.map(lambda s: "-" + s),
        base.map(lambda s: "0" + s),
        base.map(lambda s: "00" + s.upper()),
        base.map(str.upper),
        base.map(lambda s: s * 12),
        st.text(string.ascii_letters + string.digits + "-_.~+", min_size=1, max_size=300),
    )


@pytest.fixture(scope="module", params=STORES)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    directory = tmp_path_factory.mktemp(f"ids-{request.param}")
    config = write_config(directory)  # tenant acme, plain secrets
    server = Server(config, directory / "ids.db", directory / "ids.log").wait_ready()
    try:
        invoice = admin_invoice(server.port)
        support = testing.support("invoiless")
        created = send(server.port, "POST", *create(support, invoice))
        assert created.status == 201, created.body
        yield Live(server.port, invoice, support.created(created))
        assert "unexpected error" not in server.output()
    finally:
        server.stop()


def create(support: testing.Support, invoice: int) -> tuple[str, bytes, dict[str, str]]:
    request = support.create(TENANT, invoice, "1.00")
    assert request.body is not None
    return request.path, request.body, {**support.credentials(TENANT), **request.headers}


def admin_invoice(port: int) -> int:
    body = {"tenant": TENANT, "number": "EDGE-1", "currency": "EUR", "total": "100.00",
            "issued_on": "2026-01-01", "due_on": "2026-12-31"}  # fmt: skip
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}
    answer = send(port, "POST", "/gateway/v1/invoices", json.dumps(body).encode(), headers)
    assert answer.status == 201, answer.body
    number: int = answer.json()["id"]
    return number


def path_of(slot: Slot, live: Live, value: str, suffix: str) -> str:
    """The route's path with `value` in the slot and the live objects' ids elsewhere."""
    codec = dialects.get(slot.dialect)
    real = {"invoice_id": codec.wire_id(live.invoice), "payment_id": codec.wire_id(live.payment)}
    scope = urlsplit(testing.support(slot.dialect).listing(TENANT, live.invoice).path).path
    fixed = re.fullmatch(
        re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(slot.route.path)), scope
    )
    values = {**(fixed.groupdict() if fixed else {}), **{k: str(v) for k, v in real.items()}}
    if not slot.in_query:
        values[slot.name] = quote(value, safe="")
    path = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], slot.route.path) + suffix
    return path + (f"?{slot.name}={quote(value, safe='')}" if slot.in_query else "")


@pytest.mark.parametrize("slot", slots(), ids=str)
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_an_id_past_the_edges_of_its_form_is_404_or_400_in_the_callers_dialect(
    live: Live, slot: Slot, data: st.DataObject
) -> None:
    codec, unit = dialects.get(slot.dialect), dialects.unit(slot.dialect)
    value = data.draw(edges(slot.dialect), label="id")
    assume(codec.parse_id(value) not in (live.invoice, live.payment))
    suffixes = ["", ".xml", ".json"] if unit.suffixes and not slot.in_query else [""]
    suffix = data.draw(st.sampled_from(suffixes), label="suffix")
    support = testing.support(slot.dialect)
    _, created, headers = create(support, live.invoice)
    body = created if slot.route.method in BODY_METHODS else None
    if body is None:
        headers = support.credentials(TENANT)

    answer = send(live.port, slot.route.method, path_of(slot, live, value, suffix), body, headers)

    assert answer.status in (400, 404), (answer.status, answer.body[:300])
    fmt = "json" if suffix == ".json" else None
    support.error(
        answer, answer.status, "not_found" if answer.status == 404 else "bad_request", fmt
    )
