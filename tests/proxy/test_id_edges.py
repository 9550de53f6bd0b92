"""Ids at the edges of the caller's form, through a proxy: 404 or 400, never a nonsense call.

Every id-bearing route of every caller dialect, with the fixed list of edge ids
(`tests.serving.test_id_edges.edge_list`), in front of an Invoiless backend that has
nothing (a fake answering 404). An id the caller's form cannot spell never reaches the
backend (only the request's other ids may be asked about); one it can reaches it only in
the backend's own form.
"""

from __future__ import annotations

import re

import pytest

import dialects
from dialects import testing

from ..clients import CLIENTS
from ..serving.test_id_edges import Live, Slot, edge_list, path_of, slots
from .conftest import ProxyFactory
from .fake import FakeBackend, status_answer
from .harness import upstream

pytestmark = pytest.mark.stores

BACKEND = "invoiless"
# Ids a caller might hold for objects the backend has (it has none: every call is a 404).
HELD = Live(port=0, invoice=1, payment=2)


def backend_ids(path: str) -> list[str]:
    """The ids in a call the proxy made, by the backend route the call is on."""
    for route in dialects.unit(BACKEND).routes:
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/?]+)", re.escape(route.path))
        found = re.fullmatch(pattern + r"(?:\?.*)?", path)
        if found:
            return [v for k, v in found.groupdict().items() if k.endswith("_id")]
    raise AssertionError(f"the proxy called no route of the backend: {path}")


@pytest.mark.parametrize("slot", slots(), ids=str)
async def test_an_edge_id_through_the_proxy_is_404_or_400_and_reaches_the_backend_in_its_form(
    make_proxy: ProxyFactory, fake: FakeBackend, slot: Slot
) -> None:
    fake.answer = status_answer(404)
    caller = CLIENTS[slot.dialect](await make_proxy(upstream(BACKEND, fake.url)))
    codec, backend = dialects.get(slot.dialect), dialects.get(BACKEND)
    support = testing.support(slot.dialect)
    held = {str(backend.wire_id(n)) for n in (HELD.invoice, HELD.payment)}
    for value in edge_list(slot.dialect, HELD):
        seen = len(fake.requests)
        body = support.create("acme", HELD.invoice, "1.00")
        sent = body.body if slot.route.method in ("POST", "PUT", "PATCH") else None
        headers = dict(body.headers) if sent is not None else {}

        reply = await caller.call(slot.route.method, path_of(slot, HELD, value, ""), sent, headers)

        assert reply.status in (400, 404), (value, reply.status, reply.body[:300])
        kind = "not_found" if reply.status == 404 else "bad_request"
        support.error(reply.answer(), reply.status, kind)
        called = [wire for call in fake.requests[seen:] for wire in backend_ids(call.path)]
        for wire in called:
            number = backend.parse_id(wire)
            assert number is not None and str(backend.wire_id(number)) == wire, (value, wire)
        if codec.parse_id(value) is None:  # only the other, held ids may be asked about
            assert set(called) <= held, (value, called)
