"""Mass assignment (OWASP API3): fields the server owns are never taken from a body.

Each request is otherwise good, so it is served; what is checked is that the stored
payment (read back through the admin API) has the server's id, creation time, tenant,
invoice, recorder and app, whatever the body claimed, and that only its own invoice
moved, by exactly its amount.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from lxml import etree

import dialects
from dialects import testing
from dialects.fields import Kind, Spec
from dialects.model import Payment
from dialects.unit import Op

from ..registry import answers_xml, lacks, names, speaks_json, writes_json
from .conftest import Catalogue
from .harness import admin, credentials, ledger, new_invoice, pay, send

EVIL = 999_999
LONG_AGO = "2000-01-01T00:00:00Z"
# Keys a stored payment may differ in between two good creates on different invoices.
OWN = {"id", "dialect_ids", "invoice_id", "created_at", "updated_at", "group_id", "allocations"}


@dataclass(frozen=True)
class Form:
    """A dialect's create in its own form, or as JSON where its own form is another."""

    dialect: str
    json: bool = False

    def __str__(self) -> str:
        return self.dialect + ("-json" if self.json else "")

    @property
    def support(self) -> testing.Support:
        return testing.support(self.dialect)

    def create(self, invoice: int) -> testing.Request:
        if self.json:
            return self.support.json_create("acme", invoice, "10.00")
        return self.support.create("acme", invoice, "10.00")

    def wire(self, spec: Spec) -> str:
        """The spec's name in this form (JSON keys of an XML dialect are underscored)."""
        return spec.wire.replace("-", "_") if self.json else spec.wire


# A dialect whose creates share their route with updates (Op.WRITE: an `Id` in the body
# names the payment to change) cannot take a claimed id as a create; its own tests check
# its server-owned fields (tests/dialects/test_quickbooks_sdk.py).
FORMS = [Form(d) for d in names(lacks(Op.WRITE))] + [
    Form(d, json=True)
    for d in names(speaks_json, writes_json, answers_xml, lacks(Op.WRITE))
    if "json" not in testing.support(d).content_type
]


def claimed(dialect: str, spec: Spec, other: int) -> object:
    """A hostile value for a field the server owns: another id, invoice, time, recorder;
    for a field it computes, another tenant's value, or the opposite of the server's."""
    codec = dialects.get(dialect)
    if spec.kind is Kind.ID:
        return codec.wire_id(EVIL)
    if spec.kind is Kind.INVOICE_ID:
        return codec.wire_id(other)
    if spec.kind in (Kind.DATE, Kind.DATETIME):
        return LONG_AGO
    if spec.kind is not Kind.CONST or spec.value is None:
        return "Mallory"
    ours = spec.value(Payment(tenant="acme", amount=Decimal("10.00")))
    theirs = spec.value(Payment(tenant="globex", amount=Decimal("10.00")))
    if theirs != ours:
        return theirs
    if isinstance(ours, bool):
        return not ours
    if isinstance(ours, Decimal):
        return ours + 1
    return "GLOBEX"


def claims(form: Form, other: int) -> dict[str, object]:
    """Every field the server owns or computes, claimed, and another tenant's name."""
    found: dict[str, object] = {"tenant": "globex"}
    for spec in dialects.get(form.dialect).fields:
        if spec.server_owned or spec.kind is Kind.CONST:
            found[form.wire(spec)] = claimed(form.dialect, spec, other)
    return found


def steady(form: Form) -> set[str]:
    """The claimed fields a tenant's payments all share (not an id, invoice or time)."""
    kinds = (Kind.ID, Kind.INVOICE_ID, Kind.DATE, Kind.DATETIME)
    fields = dialects.get(form.dialect).fields
    return {form.wire(spec) for spec in fields if spec.kind not in kinds}


def leaves(body: bytes) -> dict[str, list[str]]:
    """An answer's values by their own name (the last part of a nested one), as text."""
    found: dict[str, list[str]] = {}
    if body.lstrip().startswith(b"<"):
        for element in etree.fromstring(body).iter():
            if len(element) == 0 and isinstance(element.tag, str):
                found.setdefault(element.tag, []).append(element.text or "")
        return found

    def walk(value: Any, name: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, key)
        elif isinstance(value, list):
            for item in value:
                walk(item, name)
        else:
            found.setdefault(name, []).append(json.dumps(value).strip('"'))

    walk(json.loads(body), "")
    return found


def text(value: object) -> str:
    return json.dumps(value).strip('"') if isinstance(value, bool) else str(value)


@pytest.mark.parametrize("form", FORMS, ids=str)
async def test_server_owned_fields_in_a_create_change_nothing(
    catalogue: Catalogue, http: aiohttp.ClientSession, form: Form
) -> None:
    """The claims change nothing against a good create without them (the control) but
    the payment's own id, invoice and time."""
    invoice = await new_invoice(http, catalogue.url)
    control_invoice = await new_invoice(http, catalogue.url)
    other = await new_invoice(http, catalogue.url, tenant="globex")
    other_before = await ledger(http, catalogue.url, other)
    support, auth = form.support, credentials(form.dialect)
    good = form.create(control_invoice)
    request = form.create(invoice)
    sent = claims(form, other)
    body = testing.with_members(request.body or b"", sent)

    control = await send(http, catalogue.url, "POST", good.path,
                         headers={**auth, **good.headers}, body=good.body)  # fmt: skip
    answer = await send(http, catalogue.url, "POST", request.path,
                        headers={**auth, **request.headers}, body=body)  # fmt: skip

    assert control.status == answer.status == support.create_status, answer.body
    number = support.created(testing.Answer(answer.status, {}, answer.body))
    stored = await admin(http, catalogue.url, "GET", f"/gateway/v1/payments/{number}")
    control_number = support.created(testing.Answer(control.status, {}, control.body))
    expected = await admin(http, catalogue.url, "GET", f"/gateway/v1/payments/{control_number}")
    assert stored["id"] != EVIL
    assert (stored["tenant"], stored["invoice_id"]) == ("acme", invoice)
    created = datetime.fromisoformat(stored["created_at"])
    assert abs(created.timestamp() - time.time()) < 300, "created now, not when the body said"
    assert Decimal(stored["amount"]) == Decimal("10.00")
    assert {k: v for k, v in stored.items() if k not in OWN} == {
        k: v for k, v in expected.items() if k not in OWN
    }
    due, _, payments = (await ledger(http, catalogue.url, invoice))[0]
    assert (due, [p["id"] for p in payments]) == ("990.00", [number])
    assert await ledger(http, catalogue.url, other) == other_before
    echoed, served = leaves(answer.body), leaves(control.body)
    for name, value in sent.items():
        key = name.rpartition(".")[2]
        if name in steady(form):  # the same for every payment of the tenant: as served
            assert echoed.get(key) == served.get(key), (name, echoed.get(key))
        else:  # its own id, invoice and times: not the claimed ones
            assert text(value) not in echoed.get(key, []), (name, echoed.get(key))


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
async def test_server_owned_fields_in_an_update_change_nothing(
    catalogue: Catalogue, http: aiohttp.ClientSession, method: str
) -> None:
    invoice = await new_invoice(http, catalogue.url)
    other = await new_invoice(http, catalogue.url, tenant="acme")
    number = await pay(http, catalogue.url, invoice, "10.00")
    before = await admin(http, catalogue.url, "GET", f"/gateway/v1/payments/{number}")
    other_before = await ledger(http, catalogue.url, other)
    body = (f'{{"amount": 20, "method": "Cash", "id": "{EVIL}", "invoice": "{other}",'
            ' "tenant": "globex"}')  # fmt: skip
    headers = {**credentials("invoiless"), "Content-Type": "application/json"}

    answer = await send(http, catalogue.url, method, f"/v1/payments/{number}", headers=headers,
                        body=body)  # fmt: skip

    assert answer.status == 200, answer.body
    assert (answer.json()["id"], answer.json()["invoice"]) == (str(number), str(invoice))
    stored = await admin(http, catalogue.url, "GET", f"/gateway/v1/payments/{number}")
    assert Decimal(stored["amount"]) == Decimal("20.00")
    owned = ("id", "tenant", "invoice_id", "created_at", "recorded_by", "client_app")
    assert {k: stored[k] for k in owned} == {k: before[k] for k in owned}
    assert (await ledger(http, catalogue.url, invoice))[0][0] == "980.00"
    assert await ledger(http, catalogue.url, other) == other_before
