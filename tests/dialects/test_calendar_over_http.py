"""Dates at the calendar's edges and non-ASCII digits, against a real gateway process.

A date UTC cannot hold (an offset past year 9999 or before year 1, Xero's `/Date(ms)/`
out of range) is refused in the caller's dialect by every route that reads one: each
dialect's create, Xero's `where` filter, the admin API, `POST /gateway/v1/translate`
and `python -m gateway translate`. The calendar's first and last days UTC holds are
taken, kept and read back on SQLite and on PostgreSQL. Xero's page numbers take ASCII
digits only. The server's log holds no unexpected error at the end.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dialects
from dialects import testing
from dialects.base import Kind
from dialects.errors import ValidationFailed
from dialects.testing import Answer

from ..conftest import ENGINES
from ..http.server import ADMIN_TOKEN, Server, engine_database, send, write_config
from ..processes.test_command_line import assert_clean_failure, gateway
from ..serving.test_id_edges import Live, admin_invoice, with_id
from .test_calendar import EDGES, NOT_ASCII_DIGITS, iso_texts, ms_texts

TENANT = "acme"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}
WRITABLE = [
    (name, spec)
    for name in dialects.units()
    for spec in dialects.get(name).fields
    if spec.kind in (Kind.DATE, Kind.DATETIME) and not spec.server_owned
]
WRITABLE_IDS = [f"{name}-{spec.wire}" for name, spec in WRITABLE]
OUT_OF_RANGE = (iso_texts() | ms_texts()).filter(lambda case: case[1] is None).map(lambda c: c[0])
# (wire text, the UTC day it names): the calendar's first and last days, reached by offsets.
INSIDE = [
    ("0001-01-01T00:00:00Z", "0001-01-01"),
    ("0001-01-01T01:00:00+01:00", "0001-01-01"),
    ("9999-12-31T23:59:59Z", "9999-12-31"),
    ("9999-12-31T23:59:59+05:00", "9999-12-31"),
    ("9999-12-30T20:00:00-03:59", "9999-12-30"),
]


def examples(count: int) -> settings:
    return settings(
        max_examples=count,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )


@pytest.fixture(scope="module", params=ENGINES)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    directory = tmp_path_factory.mktemp(f"calendar-{request.param}")
    database = engine_database(request, directory, "calendar")
    server = Server(write_config(directory), database, directory / "calendar.log").wait_ready()
    try:
        yield Live(server.port, admin_invoice(server.port), 0)
        output = server.output()
        assert "unexpected error" not in output and "Traceback" not in output, output[-3000:]
    finally:
        server.stop()


def create(live: Live, name: str, wire: str, value: str) -> Answer:
    support = testing.support(name)
    request = support.create(TENANT, live.invoice, "1.00")
    assert request.body is not None
    body = with_id(request.body, wire, value, [])
    headers = {**support.credentials(TENANT), **request.headers}
    return send(live.port, "POST", request.path, body, headers)


def payment_count(live: Live) -> int:
    answer = send(live.port, "GET", f"/gateway/v1/invoices/{live.invoice}", None, ADMIN)
    assert answer.status == 200, answer.body
    return len(answer.json()["payments"])


@pytest.mark.parametrize(("name", "spec"), WRITABLE, ids=WRITABLE_IDS)
@examples(12)
@given(value=st.sampled_from(EDGES) | OUT_OF_RANGE)
def test_a_date_utc_cannot_hold_is_refused_in_the_callers_dialect(
    live: Live, name: str, spec: object, value: str
) -> None:
    wire = getattr(spec, "wire")  # noqa: B009 - a Spec, typed loosely for parametrize
    before = payment_count(live)

    answer = create(live, name, wire, value)

    status = dialects.get(name).status_of(ValidationFailed(fields={}))
    text = testing.support(name).error(answer, status, "validation")
    assert "out of range" in text or "not a valid" in text, text
    assert payment_count(live) == before


@pytest.mark.parametrize(("name", "spec"), WRITABLE, ids=WRITABLE_IDS)
@pytest.mark.parametrize(("value", "day"), INSIDE)
def test_the_calendars_first_and_last_days_are_kept_and_read_back(
    live: Live, name: str, spec: object, value: str, day: str
) -> None:
    support = testing.support(name)

    answer = create(live, name, getattr(spec, "wire"), value)  # noqa: B009

    assert answer.status == support.create_status, answer.body[:500]
    created = support.created(answer)
    listed = send(
        live.port, "GET", support.listing(TENANT, live.invoice).path, None,
        {**support.credentials(TENANT), **support.listing(TENANT, live.invoice).headers},
    )  # fmt: skip
    assert listed.status == 200, listed.body[:500]
    [view] = [v for v in support.views(listed.body) if v["id"] == created]
    assert view["paid_on"] == day
    invoice = send(live.port, "GET", f"/gateway/v1/invoices/{live.invoice}", None, ADMIN)
    assert invoice.status == 200, invoice.body


@pytest.mark.parametrize(
    "where",
    [
        "Date >= DateTime(10000, 1, 1)",
        "Date >= DateTime(\uff12\uff10\uff12\uff16, 1, 1)",
        'Date >= "9999-12-31T23:00:00-05:00"',
        'Date < "0001-01-01T00:30:00+01:00"',
    ],
)
def test_a_xero_filter_date_utc_cannot_hold_is_a_400(live: Live, where: str) -> None:
    support = testing.support("xero")
    path = f"{support.list_path}?where={quote(where)}"

    answer = send(live.port, "GET", path, None, support.credentials(TENANT))

    assert where.split(" ", 2)[2] in support.error(answer, 400, "bad_query")


@examples(25)
@given(
    name=st.sampled_from(["page", "pageSize"]),
    digit=st.sampled_from(NOT_ASCII_DIGITS),
    head=st.sampled_from(["", "1"]),
)
def test_a_xero_page_in_digits_that_are_not_ascii_is_a_400(
    live: Live, name: str, digit: str, head: str
) -> None:
    support = testing.support("xero")
    path = f"{support.list_path}?{name}={quote(head + digit)}"

    answer = send(live.port, "GET", path, None, support.credentials(TENANT))

    assert f"{name} must be a whole number" in support.error(answer, 400, "bad_query")


@pytest.mark.parametrize("field", ["issued_on", "due_on"])
@pytest.mark.parametrize("value", [*EDGES, "10000-01-01", "0000-12-31"])
def test_the_admin_api_refuses_an_invoice_date_utc_cannot_hold(
    live: Live, field: str, value: str
) -> None:
    body = {"tenant": TENANT, "number": f"CAL-{field}", "currency": "EUR", "total": "10.00",
            "issued_on": "2026-01-01", "due_on": "2026-12-31", field: value}  # fmt: skip

    answer = send(live.port, "POST", "/gateway/v1/invoices", json.dumps(body).encode(), ADMIN)

    assert answer.status == 422, answer.body
    error = answer.json()["error"]
    assert error["code"] == "validation" and set(error["fields"]) == {field}, error


def translated_sources() -> list[tuple[str, str, str]]:
    """(dialect, field, document) for each dialect's create with its date field at an edge."""
    found = []
    for name, spec in WRITABLE:
        request = testing.support(name).create(TENANT, 7, "1.00")
        assert request.body is not None
        for value in EDGES[:2]:
            body = with_id(request.body, spec.wire, value, [])
            found.append((name, spec.wire, body.decode()))
    return found


SOURCES = translated_sources()
SOURCE_IDS = [f"{name}-{i % 2}" for i, (name, _, _) in enumerate(SOURCES)]


@pytest.mark.parametrize(("name", "wire", "document"), SOURCES, ids=SOURCE_IDS)
def test_the_translate_endpoint_refuses_a_date_utc_cannot_hold(
    live: Live, name: str, wire: str, document: str
) -> None:
    body = json.dumps({"from": name, "document": document}).encode()

    answer = send(live.port, "POST", "/gateway/v1/translate", body,
                  {"Content-Type": "application/json"})  # fmt: skip

    assert answer.status == 422, answer.body
    error = answer.json()["error"]
    assert error["code"] == "validation" and "out of range" in json.dumps(error), error


@pytest.mark.parametrize(("name", "wire", "document"), SOURCES[::2], ids=SOURCE_IDS[::2])
def test_the_translate_command_refuses_a_date_utc_cannot_hold(
    name: str, wire: str, document: str
) -> None:
    result = gateway("translate", "--from", name, "--to", "invoiless", stdin=document.encode())

    assert "out of range" in assert_clean_failure(result, 1)


PAGED = [
    (name, name_)
    for name, unit in dialects.units().items()
    for route in unit.routes
    if route.paging is not None
    for name_ in route.paging
]


@pytest.mark.parametrize(("name", "parameter"), PAGED, ids=[f"{n}-{p}" for n, p in PAGED])
@examples(20)
@given(digit=st.sampled_from(NOT_ASCII_DIGITS), head=st.sampled_from(["", "1"]))
def test_a_page_bound_in_digits_that_are_not_ascii_is_refused_in_the_callers_dialect(
    live: Live, name: str, parameter: str, digit: str, head: str
) -> None:
    support = testing.support(name)
    listing = support.listing(TENANT, live.invoice)
    joiner = "&" if "?" in listing.path else "?"
    path = f"{listing.path}{joiner}{parameter}={quote(head + digit)}"

    answer = send(live.port, "GET", path, None, {**support.credentials(TENANT), **listing.headers})

    status = dialects.get(name).status_of(ValidationFailed(fields={}))
    support.error(answer, status, "validation")


@pytest.mark.parametrize("length", [b"\xb2", b"\xef\xbc\x91", b"\xd9\xa3", b"1\xb2"])
def test_a_request_content_length_that_is_not_ascii_digits_is_a_400(
    live: Live, length: bytes
) -> None:
    support = testing.support("invoiless")
    request = support.create(TENANT, live.invoice, "1.00")
    assert request.body is not None
    headers = {**support.credentials(TENANT), **request.headers}
    lines = [f"POST {request.path} HTTP/1.1".encode(), b"Host: 127.0.0.1"]
    lines += [f"{k}: {v}".encode() for k, v in headers.items()]
    lines += [b"Content-Length: " + length, b"Connection: close"]
    before = payment_count(live)

    with socket.create_connection(("127.0.0.1", live.port), timeout=10) as sock:
        sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + request.body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk

    # aiohttp's parser refuses it before any handler runs (framing it cannot trust).
    assert answer.split(b"\r\n", 1)[0] in (b"HTTP/1.0 400 Bad Request", b"HTTP/1.1 400 Bad Request")
    assert payment_count(live) == before
