"""Ids at the edges of each dialect's id form, on every route that takes one: 404 or 400.

The routes come from the registry (every unit's route table, path parameters named
`*_id`, and ids its test client sends in a query string); the values from each
dialect's own id form pushed past its edges: the largest it can spell, zero, signs,
leading zeros, upper case, overlong strings, NUL and lone surrogates. Each is answered
in the caller's dialect, never with a 500, by a real gateway process on each store
(SQLite and the session's PostgreSQL server).

The same values go where a write's body carries an id (the invoice a create names,
alone or in a batch, and any id an update's body holds; the shapes are the dialects'
test clients'), into the admin API's paths, and into Idempotency-Key headers: each is
refused in the caller's dialect and the ledger is left as it was.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import quote, urlsplit
from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from lxml import etree

import dialects
from dialects import testing
from dialects.base import Kind, Spec
from dialects.testing import Answer
from dialects.unit import DialectUnit, Op, Route
from gateway.ledger import idempotency
from gateway.serving import admin
from gateway.store import MAX_ID

from ..conftest import ENGINES
from ..http.server import ADMIN_TOKEN, Server, engine_database, send, write_config
from ..registry import ALL

TENANT = "acme"
BODY_METHODS = ("POST", "PUT", "PATCH")


def examples(count: int) -> settings:
    """Hypothesis settings for a test against the module's one live server."""
    return settings(
        max_examples=count,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )


@dataclass(frozen=True)
class Live:
    """The one invoice and payment the server holds, and its port."""

    port: int
    invoice: int
    payment: int


@dataclass(frozen=True)
class RouteSlot:
    """A place on one of a dialect's routes where an id goes."""

    dialect: str
    route: Route

    @property
    def where(self) -> str:
        raise NotImplementedError

    def __str__(self) -> str:
        return f"{self.dialect} {self.route.method} {self.route.path} {self.where}"


@dataclass(frozen=True)
class Slot(RouteSlot):
    """One id a route takes: in its path (`{name}`) or in its query string (`name=`)."""

    name: str
    in_query: bool = False

    @property
    def where(self) -> str:
        return f"?{self.name}=" if self.in_query else f"{{{self.name}}}"


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


# Text no id form spells but a careless parser or a store might choke on: NUL, a lone
# surrogate, other scripts' digits, signs, exponents and blanks.
ODD = ["\x00", "1\x00", "\ud800", "1\udfff", "\u0661\u0662", "\uff11", "+1", "1e3", " 1", "1 ",
       "0x1f", "\u00e9"]  # fmt: skip


# How an id is pushed past its form: as it is, signed, zero-padded, upper-cased, repeated.
TRANSFORMS: tuple[Callable[[str], str], ...] = (
    str,
    lambda s: "-" + s,
    lambda s: "0" + s,
    lambda s: "00" + s.upper(),
    str.upper,
    lambda s: s * 12,
)


def spelled(dialect: str, live: Live) -> list[str]:
    """`dialect`'s spelling of the numbers at the edges, and of the live objects' ids."""
    codec = dialects.get(dialect)
    numbers = (0, 1, MAX_ID, MAX_ID + 1, 16**24 - 1, 10**18 - 1, live.invoice, live.payment)
    return [str(codec.wire_id(n)) for n in numbers]


def edge_list(dialect: str, live: Live) -> list[str]:
    """Every edge transform of every spelled edge, the odd texts, and the live invoice's id
    with each odd text after it: a fixed list for tests that do not draw."""
    found = [change(s) for s in spelled(dialect, live) for change in TRANSFORMS]
    invoice = str(dialects.get(dialect).wire_id(live.invoice))
    found += ODD + [invoice + odd for odd in ODD]
    return list(dict.fromkeys(found))


def edges(dialect: str, live: Live) -> st.SearchStrategy[str]:
    """Ids just inside, at and past the edges of `dialect`'s id form."""
    codec = dialects.get(dialect)
    wire = st.integers(min_value=0, max_value=2**100).map(lambda n: str(codec.wire_id(n)))
    base = st.one_of(st.sampled_from(spelled(dialect, live)), wire)
    return st.one_of(
        *(base.map(change) for change in TRANSFORMS),
        st.tuples(base, st.sampled_from(ODD)).map("".join),
        st.sampled_from(ODD),
        st.text(string.ascii_letters + string.digits + "-_.~+", min_size=1, max_size=300),
        st.text(min_size=1, max_size=8),  # any code point, surrogates and NUL included
    )


@pytest.fixture(scope="module", params=ENGINES)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    directory = tmp_path_factory.mktemp(f"ids-{request.param}")
    config = write_config(directory)  # tenant acme, plain secrets
    database = engine_database(request, directory, "ids")
    server = Server(config, database, directory / "ids.log").wait_ready()
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
    # The scope's values (a business, a company) as the listing path, on whichever of the
    # dialect's routes it is, spells them.
    found = (
        re.fullmatch(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(route.path)), scope)
        for route in (slot.route, *dialects.unit(slot.dialect).routes)
    )
    fixed = next((match for match in found if match), None)
    values = {**(fixed.groupdict() if fixed else {}), **{k: str(v) for k, v in real.items()}}
    if not slot.in_query:
        values[slot.name] = quoted(value)
    path = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], slot.route.path) + suffix
    return path + (f"?{slot.name}={quoted(value)}" if slot.in_query else "")


def quoted(value: str) -> str:
    """`value` percent-encoded as UTF-8, a lone surrogate as the bytes it would have been."""
    return quote(value, safe="", errors="surrogatepass")


@pytest.mark.parametrize("slot", slots(), ids=str)
@examples(15)
@given(data=st.data())
def test_an_id_past_the_edges_of_its_form_is_404_or_400_in_the_callers_dialect(
    live: Live, slot: Slot, data: st.DataObject
) -> None:
    codec, unit = dialects.get(slot.dialect), dialects.unit(slot.dialect)
    value = data.draw(edges(slot.dialect, live), label="id")
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


# --- ids inside request bodies --------------------------------------------------------------

BODY_OPS = (Op.CREATE, Op.CREATE_MANY, Op.REPLACE, Op.PATCH)
PLACEHOLDER = "edge-id-placeholder"


@dataclass(frozen=True)
class BodySlot(RouteSlot):
    """One id a write's body can carry: a field of the dialect's table, alone or in a batch."""

    spec: Spec
    batch: bool = False

    @property
    def where(self) -> str:
        return ("batch " if self.batch else "") + self.spec.wire


INVOICE_ATTRS = ("invoice_id", "invoice_number")


def body_slots() -> list[BodySlot]:
    found = []
    for name, unit in sorted(dialects.units().items()):
        specs = [s for s in unit.codec.fields if s.kind in ID_KINDS or s.attr in INVOICE_ATTRS]
        batched = testing.support(name).batch([]) is not None
        for route in (r for r in unit.routes if r.op in BODY_OPS):
            found += [BodySlot(name, route, spec) for spec in specs]
            if route.op is Op.CREATE_MANY and batched:
                found += [BodySlot(name, route, spec, True) for spec in specs]
    return found


ID_KINDS = (Kind.ID, Kind.INVOICE_ID)


def json_values(dialect: str, live: Live) -> st.SearchStrategy[object]:
    """What a JSON body can put where an id goes: edge texts, numbers past every edge, any JSON."""
    numbers = [0, -1, 1, MAX_ID, MAX_ID + 1, 2**64, 10**18, 10**40, -(10**40)]
    return st.one_of(
        edges(dialect, live),
        st.sampled_from(numbers),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.booleans(),
        st.lists(st.integers(), max_size=2),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    )


def with_id(body: bytes, wire: str, value: object, invoice_wires: list[str]) -> bytes:
    """The support's body with `value` at field `wire` (dotted: nested); a body that names
    its invoice at `wire` names it there only."""
    others = [w for w in invoice_wires if w != wire] if wire in invoice_wires else []
    if body.lstrip().startswith(b"<"):
        root = etree.fromstring(body)
        for other in others:
            found = root.find(other.replace(".", "/"))
            if found is not None:
                found.getparent().remove(found)  # type: ignore[union-attr]
        element = root
        for part in wire.split("."):
            child = element.find(part)
            element = child if child is not None else etree.SubElement(element, part)
        element.attrib.clear()
        element.text = PLACEHOLDER
        text = escape(value if isinstance(value, str) else json.dumps(value))
        return etree.tostring(root).replace(
            PLACEHOLDER.encode(), text.encode("utf-8", errors="surrogatepass")
        )
    document = json.loads(body)
    for other in others:
        document.pop(other, None)
    target = document
    *parents, last = wire.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[last] = value
    return json.dumps(document).encode()


def legitimate(slot: BodySlot, value: object, live: Live) -> bool:
    """Whether `value` is an id the request may well be served with (a server-owned id in
    the form is ignored when it is spelled in the form, even past what a store holds, as
    urlKey's 24 hex digits can; an update's body names no invoice to pay)."""
    if slot.spec.kind not in ID_KINDS or isinstance(value, bool):
        return False
    number = dialects.get(slot.dialect).parse_id(value) if value is not None else None
    known = number is not None and (number in (live.invoice, live.payment))
    ignored = slot.spec.server_owned or slot.route.op in (Op.REPLACE, Op.PATCH)
    return known or (ignored and (value is None or number is not None))


def body_request(slot: BodySlot, live: Live, value: object) -> tuple[str, bytes, dict[str, str]]:
    support = testing.support(slot.dialect)
    path, body, headers = create(support, live.invoice)
    if slot.route.op in (Op.REPLACE, Op.PATCH):
        path = slot.route.path.replace("{payment_id}", str(support.wire_id(live.payment)))
    invoice_wires = [s.wire for s in support.codec.fields if s.attr in INVOICE_ATTRS]
    body = with_id(body, slot.spec.wire, value, invoice_wires)
    if slot.batch:
        body = support.batch([body]) or body
    return path, body, headers


def ledger(port: int, invoice: int) -> object:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    answer = send(port, "GET", f"/gateway/v1/invoices/{invoice}", None, headers)
    assert answer.status == 200, answer.body
    return answer.json()


@pytest.mark.parametrize("slot", body_slots(), ids=str)
@examples(10)
@given(data=st.data())
def test_an_id_past_the_edges_in_a_body_is_refused_in_the_callers_dialect_recording_nothing(
    live: Live, slot: BodySlot, data: st.DataObject
) -> None:
    support = testing.support(slot.dialect)
    json_body = "json" in support.content_type
    values = json_values(slot.dialect, live) if json_body else edges(slot.dialect, live)
    value = data.draw(values, label="id")
    assume(not legitimate(slot, value, live))
    path, body, headers = body_request(slot, live, value)
    before = ledger(live.port, live.invoice)

    answer = send(live.port, slot.route.method, path, body, headers)

    assert answer.status in (400, 404, 422), (answer.status, answer.body[:300])
    assert_dialect_error(support, answer)
    assert ledger(live.port, live.invoice) == before


def assert_dialect_error(support: testing.Support, answer: Answer) -> None:
    """`answer` is one of the dialect's own refusals (which one depends on the value)."""
    kinds = ["not_found"] if answer.status == 404 else ["validation", "bad_request"]
    for kind in kinds[:-1]:
        try:
            support.error(answer, answer.status, kind)
            return
        except AssertionError:
            continue
    support.error(answer, answer.status, kinds[-1])


# --- ids the admin API takes in its paths, and Idempotency-Key headers -------------------------

ADMIN_VALUES = {"id": "1", "dialect": "invoiless", "kind": "payment", "tenant": TENANT,
                "key": "edge-key", "name": "erp"}  # fmt: skip


def admin_slots() -> list[tuple[str, str, str]]:
    """(method, path, parameter) of every admin route with a parameter in its path."""
    return [
        (route.method, route.path, name)
        for route in admin.ROUTES
        for name in re.findall(r"\{(\w+)(?::[^}]*)?\}", route.path)
    ]


@pytest.mark.parametrize("slot", admin_slots(), ids=" ".join)
@examples(10)
@given(data=st.data())
def test_an_id_past_the_edges_in_an_admin_path_is_404_or_400(
    live: Live, slot: tuple[str, str, str], data: st.DataObject
) -> None:
    method, template, name = slot
    value = data.draw(edges(ADMIN_VALUES["dialect"], live), label=name)
    real = {**ADMIN_VALUES, name: quoted(value)}
    path = re.sub(r"\{(\w+)(?::[^}]*)?\}", lambda m: real[m.group(1)], template)
    assume(
        dialects.get(ADMIN_VALUES["dialect"]).parse_id(value) not in (live.invoice, live.payment)
    )
    assume(value not in dialects.units() and value not in ("invoice", "payment"))
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    answer = send(live.port, method, path, None, headers)

    assert answer.status in (400, 404), (answer.status, answer.body[:300])
    testing.error_object(answer, answer.status)


# Keys no store can hold, as a header can carry them (the HTTP parser itself refuses
# control characters): blank, over-long, or with a character that is not printable text
# (an undecodable byte arrives as a lone surrogate).
UNPRINTABLE = ["\ud800", "\udfff", "\x85", "\xa0", "\u2028", "\ufeff", "\U000e0001"]
TEXT = st.text(string.ascii_letters + string.digits, min_size=1, max_size=6)
BAD_KEYS = st.one_of(
    st.sampled_from(["", " ", '""']),
    st.text(string.ascii_letters, min_size=idempotency.MAX_LENGTH + 1, max_size=300),
    st.tuples(TEXT, st.sampled_from(UNPRINTABLE), TEXT).map("".join),
)


@pytest.mark.parametrize("dialect", ALL)
@examples(5)
@given(key=BAD_KEYS)
def test_an_idempotency_key_no_store_can_hold_is_400_in_the_callers_dialect_recording_nothing(
    live: Live, dialect: str, key: str
) -> None:
    support = testing.support(dialect)
    path, body, headers = create(support, live.invoice)
    wire = key.encode("utf-8", errors="surrogatepass").decode("latin-1")  # the bytes as sent
    before = ledger(live.port, live.invoice)

    answer = send(live.port, "POST", path, body, {**headers, idempotency.HEADER: wire})

    assert answer.status == 400, (answer.status, answer.body[:300])
    support.error(answer, 400, "bad_request")
    assert ledger(live.port, live.invoice) == before


@pytest.mark.parametrize("number", ["a\ud800b", "\udfff", "a\x7fb", "a\uffffb", "a\x00b"])
def test_an_invoice_number_no_caller_can_name_and_no_store_can_hold_is_422(
    live: Live, number: str
) -> None:
    """An invoice's number is the id Xero's callers name it by."""
    body = {"tenant": TENANT, "number": number, "currency": "EUR", "total": "1.00",
            "issued_on": "2026-01-01", "due_on": "2026-12-31"}  # fmt: skip
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}

    answer = send(live.port, "POST", "/gateway/v1/invoices", json.dumps(body).encode(), headers)

    assert answer.status == 422, answer.body
    assert "number" in testing.error_object(answer, 422)
    assert (
        send(live.port, "GET", f"/gateway/v1/invoices/{live.invoice + 1}", None, headers).status
        == 404
    )
