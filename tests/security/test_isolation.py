"""Tenant isolation (OWASP API1) over the network: another tenant's ids do not exist.

The probes of tests/access/test_tenant_isolation.py (every operation of every dialect, both
Harvest path spellings, both format suffixes, with and without scope-id) are sent by
globex, with its own good credentials, at acme's invoice and payment, and again at ids
never used. The two answers must be the same bytes: status, headers and body.
"""

from __future__ import annotations

import aiohttp
import pytest

from ..access.test_tenant_isolation import PROBES, Probe, _fill
from .conftest import Catalogue
from .harness import (
    NEVER,
    Answer,
    assert_error,
    credentials,
    hexid,
    ledger,
    new_invoice,
    pay,
    send,
    timed,
)

_VARYING = {"date", "server", "x-request-id"}  # set per answer, whatever it concerns


async def probe_at(
    http: aiohttp.ClientSession, url: str, probe: Probe, invoice: int, payment: int, own: int
) -> Answer:
    ids = {"inv": invoice, "pay": payment, "own": own, "hinv": hexid(invoice)}
    headers = {**credentials(probe.dialect, "globex"), **dict(probe.headers)}
    body = _fill(probe.body, ids) if probe.body is not None else None
    return await send(http, url, probe.method, _fill(probe.path, ids), headers=headers,
                      body=body)  # fmt: skip


@pytest.mark.parametrize("probe", PROBES, ids=[p.id for p in PROBES])
async def test_another_tenants_ids_answer_exactly_like_ids_that_never_existed(
    catalogue: Catalogue, http: aiohttp.ClientSession, probe: Probe
) -> None:
    acme_invoice = await new_invoice(http, catalogue.url, tenant="acme")
    acme_payment = await pay(http, catalogue.url, acme_invoice, "12.34")
    globex_invoice = await new_invoice(http, catalogue.url, tenant="globex")
    before = await ledger(http, catalogue.url, acme_invoice, globex_invoice)

    foreign = await probe_at(http, catalogue.url, probe, acme_invoice, acme_payment,
                             globex_invoice)  # fmt: skip
    absent = await probe_at(http, catalogue.url, probe, NEVER, NEVER + 1, globex_invoice)

    assert foreign.status == probe.status, foreign.body
    kind = {400: "validation", 403: "forbidden", 404: "not_found"}[probe.status]
    fmt = "json" if ".json" in probe.path else None  # the Rails suffix picks the format
    assert_error(probe.dialect, foreign, kind, fmt=fmt)
    same = {k: v for k, v in foreign.headers.items() if k.lower() not in _VARYING}
    assert same == {k: v for k, v in absent.headers.items() if k.lower() not in _VARYING}
    assert foreign.body == absent.body
    timed(f"isolation {probe.id}", foreign)
    assert await ledger(http, catalogue.url, acme_invoice, globex_invoice) == before
