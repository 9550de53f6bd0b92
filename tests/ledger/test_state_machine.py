"""The ledger as a state machine: random writes and reads through random dialects, checked
at every step against a model of due amounts, statuses, visibility and ids.

Creates, updates, deletes, reads and lists go through the dialects of the registry
that have each operation; keyed creates are replayed, and must answer the same bytes
and change nothing. After every step each invoice, as the admin API shows it, has
the due amount, status and live payments the model says.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, multiple, rule

import dialects
from dialects import testing
from dialects.testing import Answer
from dialects.unit import Op

from ..http.server import ADMIN_TOKEN, Server, send, write_config
from ..registry import names

TENANT = "acme"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
KEY = "Idempotency-Key"
NAMES = names()
WRITERS = [n for n in NAMES if dialects.unit(n).route(Op.CREATE)]
UPDATERS = [n for n in NAMES if dialects.unit(n).route(Op.PATCH)]
DELETERS = [n for n in NAMES if testing.support(n).deleted_status is not None]
AMOUNTS = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("400"), places=2)
NUMBERS = itertools.count(1)


@dataclass
class Invoice:
    id: int
    total: Decimal
    payments: dict[int, Decimal] = field(default_factory=dict)  # the live ones

    @property
    def due(self) -> Decimal:
        return self.total - sum(self.payments.values(), Decimal(0))

    @property
    def status(self) -> str:
        return "paid" if self.due <= 0 else "partial" if self.payments else "open"


@dataclass(frozen=True)
class Payment:
    id: int
    invoice: Invoice


@dataclass(frozen=True)
class Sent:
    """A keyed request as first sent, and what it was answered."""

    dialect: str
    method: str
    path: str
    body: bytes
    headers: dict[str, str]
    answer: Answer


PORT: list[int] = []


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("machine")
    config = write_config(directory)  # tenant acme, plain secrets
    process = Server(config, directory / "ledger.db", directory / "ledger.log").wait_ready()
    try:
        yield process
        assert "unexpected error" not in process.output()
    finally:
        process.stop()


def call(method: str, path: str, body: bytes | None = None, headers: Any = None) -> Answer:
    return send(PORT[0], method, path, body, headers)


class Ledger(RuleBasedStateMachine):
    invoices = Bundle("invoices")
    payments = Bundle("payments")
    keyed = Bundle("keyed")

    def __init__(self) -> None:
        super().__init__()
        self.model: list[Invoice] = []
        self.deleted: dict[int, Decimal] = {}  # what each deleted payment held

    # --- writes ---------------------------------------------------------------------------

    @rule(target=invoices, total=st.sampled_from(["100.00", "250.00", "1000.00"]))
    def new_invoice(self, total: str) -> Invoice:
        body = {"tenant": TENANT, "number": f"SM-{next(NUMBERS)}", "currency": "EUR",
                "total": total, "issued_on": "2026-01-01", "due_on": "2999-12-31"}  # fmt: skip
        answer = call("POST", "/gateway/v1/invoices", json.dumps(body).encode(), ADMIN)
        assert answer.status == 201, answer.body
        invoice = Invoice(answer.json()["id"], Decimal(total))
        self.model.append(invoice)
        return invoice

    @rule(target=payments, invoice=invoices, dialect=st.sampled_from(WRITERS), amount=AMOUNTS)
    def create(self, invoice: Invoice, dialect: str, amount: Decimal) -> Any:
        support = testing.support(dialect)
        request = support.create(TENANT, invoice.id, str(amount))
        headers = {**support.credentials(TENANT), **request.headers}
        answer = call("POST", request.path, request.body, headers)
        return self._created(invoice, dialect, amount, answer)

    @rule(target=keyed, invoice=invoices, dialect=st.sampled_from(WRITERS), amount=AMOUNTS)
    def keyed_create(self, invoice: Invoice, dialect: str, amount: Decimal) -> Any:
        support = testing.support(dialect)
        request = support.create(TENANT, invoice.id, str(amount))
        assert request.body is not None
        headers = {**support.credentials(TENANT), **request.headers, KEY: f"sm-{next(NUMBERS)}"}
        answer = call("POST", request.path, request.body, headers)
        if not isinstance(self._created(invoice, dialect, amount, answer), Payment):
            return multiple()  # a refused write stores nothing and frees its key
        return Sent(dialect, "POST", request.path, request.body, headers, answer)

    def _created(self, invoice: Invoice, dialect: str, amount: Decimal, answer: Answer) -> Any:
        if amount > invoice.due:
            testing.support(dialect).error(answer, 422, "ledger")
            return multiple()  # a refused create adds no payment
        assert answer.status == 201, answer.body
        number = testing.support(dialect).created(answer)
        assert number not in invoice.payments
        invoice.payments[number] = amount
        return Payment(number, invoice)

    @rule(keyed=keyed)
    def replay(self, keyed: Sent) -> None:
        """Same key, same request: the first answer again, byte for byte; nothing changes."""
        headers = {**keyed.headers, **testing.support(keyed.dialect).credentials(TENANT)}
        answer = call(keyed.method, keyed.path, keyed.body, headers)
        assert (answer.status, answer.body) == (keyed.answer.status, keyed.answer.body)
        assert answer.header("Idempotent-Replayed") == "true"

    @rule(payment=payments, dialect=st.sampled_from(UPDATERS), amount=AMOUNTS,
          op=st.sampled_from([Op.PATCH, Op.REPLACE]))  # fmt: skip
    def update(self, payment: Payment, dialect: str, amount: Decimal, op: Op) -> None:
        invoice, support = payment.invoice, testing.support(dialect)
        route = dialects.unit(dialect).route(op)
        assert route is not None
        path = route.path.format(payment_id=support.wire_id(payment.id))
        request = support.create(TENANT, invoice.id, str(amount))
        headers = {**support.credentials(TENANT), **request.headers}
        answer = call(route.method, path, request.body, headers)
        if payment.id not in invoice.payments:
            support.error(answer, 404, "not_found")
        elif amount > invoice.due + invoice.payments[payment.id]:
            support.error(answer, 422, "ledger")
        else:
            assert answer.status == 200, answer.body
            assert support.view(answer.body)["amount"] == amount
            invoice.payments[payment.id] = amount

    @rule(payment=payments, dialect=st.sampled_from(DELETERS))
    def delete(self, payment: Payment, dialect: str) -> None:
        support = testing.support(dialect)
        request = support.delete(TENANT, payment.invoice.id, payment.id)
        assert request is not None
        headers = {**support.credentials(TENANT), **request.headers}
        answer = call(request.method, request.path, request.body, headers)
        if payment.id in payment.invoice.payments:
            assert answer.status == support.deleted_status, answer.body
            self.deleted[payment.id] = payment.invoice.payments.pop(payment.id)
        else:
            support.error(answer, 404, "not_found")

    # --- reads -------------------------------------------------------------------------------

    @rule(payment=payments, dialect=st.sampled_from(NAMES))
    def read(self, payment: Payment, dialect: str) -> None:
        support = testing.support(dialect)
        request = support.get(TENANT, payment.invoice.id, payment.id)
        live = payment.invoice.payments.get(payment.id)
        if request is None:  # no get-one: the payment is found in its invoice's list
            found = [v for v in self._list(dialect, payment.invoice) if v["id"] == payment.id]
            assert [v["amount"] for v in found] == ([live] if live is not None else [])
            return
        answer = call(request.method, request.path, None, support.credentials(TENANT))
        if live is None and dialects.get(dialect).shows_deleted:
            live = self.deleted.get(payment.id)  # it keeps deleted payments readable
        if live is None:
            support.error(answer, 404, "not_found")
        else:
            assert answer.status == 200, answer.body
            assert (support.view(answer.body)["id"], support.view(answer.body)["amount"]) == (
                payment.id,
                live,
            )

    @rule(invoice=invoices, dialect=st.sampled_from(NAMES))
    def listing(self, invoice: Invoice, dialect: str) -> None:
        views = self._list(dialect, invoice)
        assert {v["id"]: v["amount"] for v in views} == invoice.payments

    @rule(payment=payments, dialect=st.sampled_from(NAMES))
    def ids_in_every_form(self, payment: Payment, dialect: str) -> None:
        wire = testing.support(dialect).wire_id(payment.id)
        answer = call("GET", f"/gateway/v1/ids/{dialect}/payment/{wire}", None, ADMIN)
        if payment.id not in payment.invoice.payments:
            assert answer.status == 404, answer.body
            return
        assert answer.status == 200, answer.body
        for name, shown in answer.json()["dialect_ids"].items():
            assert dialects.get(name).parse_id(shown) == payment.id, (name, shown)

    def _list(self, dialect: str, invoice: Invoice) -> list[dict[str, Any]]:
        support = testing.support(dialect)
        request = support.listing(TENANT, invoice.id)
        headers = {**support.credentials(TENANT), **request.headers}
        answer = call(request.method, request.path, None, headers)
        assert answer.status == 200, answer.body
        return support.views(answer.body)

    # --- after every step ---------------------------------------------------------------------

    @invariant()
    def invoices_follow_the_model(self) -> None:
        for invoice in self.model:
            answer = call("GET", f"/gateway/v1/invoices/{invoice.id}", None, ADMIN)
            assert answer.status == 200, answer.body
            shown = answer.json()
            assert Decimal(shown["due_amount"]) == invoice.due
            assert shown["status"] == invoice.status
            assert {p["id"]: Decimal(p["amount"]) for p in shown["payments"]} == invoice.payments


Ledger.TestCase.settings = settings(
    max_examples=15,
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def test_the_ledger_follows_its_model_through_every_dialect(server: Server) -> None:
    PORT[:] = [server.port]
    Ledger.TestCase().runTest()
