"""Tenant isolation: another tenant's ids answer exactly as ids that were never used.

acme records an invoice and a payment; globex, with its own valid credentials, tries
every operation of every dialect on acme's ids. Each answer must be indistinguishable
(status, content type and body) from the same request on ids that do not exist, and
acme's ledger must be exactly as it was.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ..clients import CLIENTS
from ..conftest import Client
from ..registry import ALL, deletes, names
from ..support import hexid, invoice_state, new_invoice
from .helpers import NEVER_INVOICE, NEVER_PAYMENT, Answer, credentials, send

pytestmark = pytest.mark.stores

HARVEST_BODY = (
    '<payment><paid-at type="datetime">2026-11-21T00:00:00Z</paid-at>'
    '<amount type="decimal">1.00</amount></payment>'
)
FASTBILL_BODY = (
    "<invoice-payment><invoice_id>{inv}</invoice_id><amount>1.00</amount></invoice-payment>"
)
INVOILESS_BODY = '{"amount": 1, "method": "Cash", "paidAt": "2026-11-21", "notes": "globex"}'
URLKEY_BODY = '{"amount": 1, "paymentMethod": "CASH", "notes": "globex"}'
XML_BODY = {"Content-Type": "application/xml"}
JSON_BODY = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Probe:
    """One request globex makes; `{inv}`, `{pay}`, `{hinv}` are acme's (or never-used) ids,
    `{own}` globex's own invoice."""

    dialect: str
    name: str
    method: str
    path: str
    status: int
    body: str | None = None
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def id(self) -> str:
        return f"{self.dialect}-{self.name}"


PROBES = [
    # harvest: nested paths, both /payments/ and the page's /payment/ spelling
    Probe("harvest", "list", "GET", "/invoices/{inv}/payments", 404),
    Probe("harvest", "list-xml", "GET", "/invoices/{inv}/payments.xml", 404),
    Probe("harvest", "list-json", "GET", "/invoices/{inv}/payments.json", 404),
    Probe("harvest", "get", "GET", "/invoices/{inv}/payments/{pay}", 404),
    Probe("harvest", "get-singular", "GET", "/invoices/{inv}/payment/{pay}", 404),
    Probe("harvest", "get-json", "GET", "/invoices/{inv}/payments/{pay}.json", 404),
    Probe("harvest", "get-under-own-invoice", "GET", "/invoices/{own}/payments/{pay}", 404),
    Probe("harvest", "create", "POST", "/invoices/{inv}/payments", 404, HARVEST_BODY,
          tuple(XML_BODY.items())),
    Probe("harvest", "delete", "DELETE", "/invoices/{inv}/payments/{pay}", 404),
    Probe("harvest", "delete-singular", "DELETE", "/invoices/{inv}/payment/{pay}", 404),
    Probe("harvest", "delete-under-own-invoice", "DELETE", "/invoices/{own}/payments/{pay}", 404),
    # fastbill: flat paths, invoice id in the query or the body
    Probe("fastbill", "list", "GET", "/api/invoice-payments?invoice_id={inv}", 404),
    Probe("fastbill", "list-json", "GET", "/api/invoice-payments.json?invoice_id={inv}", 404),
    Probe("fastbill", "get", "GET", "/api/invoice-payments/{pay}", 404),
    Probe("fastbill", "get-xml", "GET", "/api/invoice-payments/{pay}.xml", 404),
    Probe("fastbill", "get-json", "GET", "/api/invoice-payments/{pay}.json", 404),
    Probe("fastbill", "create", "POST", "/api/invoice-payments", 404, FASTBILL_BODY,
          tuple(XML_BODY.items())),
    Probe("fastbill", "delete", "DELETE", "/api/invoice-payments/{pay}", 404),
    # invoiless: string ids, PUT and PATCH too, with and without globex's own scope
    Probe("invoiless", "list", "GET", "/v1/invoices/{inv}/payments", 404),
    Probe("invoiless", "list-scoped", "GET", "/v1/invoices/{inv}/payments", 404,
          headers=(("scope-id", "globex-scope"),)),
    Probe("invoiless", "get", "GET", "/v1/payments/{pay}", 404),
    Probe("invoiless", "get-scoped", "GET", "/v1/payments/{pay}", 404,
          headers=(("scope-id", "globex-scope"),)),
    Probe("invoiless", "create", "POST", "/v1/invoices/{inv}/payments", 404, INVOILESS_BODY,
          tuple(JSON_BODY.items())),
    Probe("invoiless", "replace", "PUT", "/v1/payments/{pay}", 404, INVOILESS_BODY,
          tuple(JSON_BODY.items())),
    Probe("invoiless", "replace-invalid", "PUT", "/v1/payments/{pay}", 400, '{"amount": 1}',
          tuple(JSON_BODY.items())),
    Probe("invoiless", "patch", "PATCH", "/v1/payments/{pay}", 404, '{"notes": "globex"}',
          tuple(JSON_BODY.items())),
    Probe("invoiless", "patch-amount", "PATCH", "/v1/payments/{pay}", 404, '{"amount": 999999}',
          tuple(JSON_BODY.items())),
    Probe("invoiless", "delete", "DELETE", "/v1/payments/{pay}", 404),
    Probe("invoiless", "delete-scoped", "DELETE", "/v1/payments/{pay}", 404,
          headers=(("scope-id", "globex-scope"),)),
    # urlKey: globex's token on its own business with acme's invoice ...
    Probe("urlkey", "list", "GET", "/businesses/globex-biz/invoices/{hinv}/payments", 404),
    Probe("urlkey", "create", "POST", "/businesses/globex-biz/invoices/{hinv}/payments", 404,
          URLKEY_BODY, tuple(JSON_BODY.items())),
    # ... and on acme's business: refused before any id is looked at
    Probe("urlkey", "list-on-acme-business", "GET",
          "/businesses/acme-biz/invoices/{hinv}/payments", 403),
    Probe("urlkey", "create-on-acme-business", "POST",
          "/businesses/acme-biz/invoices/{hinv}/payments", 403, URLKEY_BODY,
          tuple(JSON_BODY.items())),
]  # fmt: skip


async def _probe(client: Client, probe: Probe, invoice: int, payment: int, own: int) -> Answer:
    ids = {"inv": invoice, "pay": payment, "own": own, "hinv": hexid(invoice)}
    headers = {**credentials(probe.dialect, "globex"), **dict(probe.headers)}
    body = _fill(probe.body, ids) if probe.body is not None else None
    return await send(client, probe.method, _fill(probe.path, ids), headers=headers, body=body)


def _fill(template: str, ids: dict[str, object]) -> str:
    for name, value in ids.items():
        template = template.replace(f"{{{name}}}", str(value))
    return template


@pytest.mark.parametrize("probe", PROBES, ids=[p.id for p in PROBES])
async def test_other_tenants_ids_answer_like_ids_that_do_not_exist(
    client: Client, probe: Probe
) -> None:
    acme_invoice = (await new_invoice(client, tenant="acme"))["id"]
    globex_invoice = (await new_invoice(client, tenant="globex"))["id"]
    acme = CLIENTS[probe.dialect](client, "acme")
    created, acme_payment = await acme.create(acme_invoice, "12.34", notes="acme's")
    assert created.status == 201, created.body
    assert acme_payment is not None
    acme_before = await invoice_state(client, acme_invoice)
    globex_before = await invoice_state(client, globex_invoice)
    listed_before = await acme.list(acme_invoice)

    foreign = await _probe(client, probe, acme_invoice, acme_payment, globex_invoice)
    absent = await _probe(client, probe, NEVER_INVOICE, NEVER_PAYMENT, globex_invoice)

    assert foreign.status == probe.status, foreign.body
    assert (foreign.status, foreign.content_type, foreign.body) == (
        absent.status,
        absent.content_type,
        absent.body,
    )
    assert await invoice_state(client, acme_invoice) == acme_before
    assert await invoice_state(client, globex_invoice) == globex_before
    assert globex_before["payments"] == []
    assert await acme.list(acme_invoice) == listed_before
    if probe.dialect != "urlkey":
        assert await acme.get(acme_invoice, acme_payment) == listed_before[0]


@pytest.mark.parametrize("dialect", ALL)
async def test_a_tenant_lists_only_its_own_invoices_payments(client: Client, dialect: str) -> None:
    acme_invoice = (await new_invoice(client, tenant="acme"))["id"]
    globex_invoice = (await new_invoice(client, tenant="globex"))["id"]
    acme, globex = CLIENTS[dialect](client, "acme"), CLIENTS[dialect](client, "globex")
    _, acme_payment = await acme.create(acme_invoice, "10.00", notes="acme")
    _, globex_payment = await globex.create(globex_invoice, "20.00", notes="globex")
    assert [p["id"] for p in await acme.list(acme_invoice)] == [acme_payment]
    assert [p["id"] for p in await globex.list(globex_invoice)] == [globex_payment]
    assert (await invoice_state(client, acme_invoice))["due_amount"] == "990.00"
    assert (await invoice_state(client, globex_invoice))["due_amount"] == "980.00"


@pytest.mark.parametrize("dialect", names(deletes))
async def test_owner_can_still_delete_after_the_other_tenants_attempt(
    client: Client, dialect: str
) -> None:
    acme_invoice = (await new_invoice(client, tenant="acme"))["id"]
    acme, globex = CLIENTS[dialect](client, "acme"), CLIENTS[dialect](client, "globex")
    _, payment = await acme.create(acme_invoice, "10.00")
    assert payment is not None
    refused = await globex.delete(acme_invoice, payment)
    assert refused.status == 404
    deleted = await acme.delete(acme_invoice, payment)
    assert deleted.status in (200, 204), deleted.body
    assert await acme.list(acme_invoice) == []
