"""Harvest classic: Rails XML (JSON on request), integer ids, no payment method."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from . import _values
from .auth import BasicBackend, email_login
from .base import Kind, Spec
from .rails import RailsDialect
from .unit import BasicAuth, Credential, DialectUnit, Op, Route, Section, Strict


class Harvest(RailsDialect):
    name = "harvest"
    root = "payment"
    list_root = "payments"
    realm = "Harvest"
    fields = (
        Spec("amount", "amount", Kind.AMOUNT, "decimal"),
        Spec("created-at", "created_at", Kind.DATETIME, "datetime", server_owned=True),
        Spec("id", "id", Kind.ID, "integer", server_owned=True),
        Spec("invoice-id", "invoice_id", Kind.INVOICE_ID, "integer", server_owned=True),
        Spec("notes", "notes", Kind.TEXT),
        Spec("paid-at", "paid_at", Kind.DATETIME, "datetime"),
        Spec("recorded-by", "recorded_by", Kind.TEXT, server_owned=True),
        Spec("recorded-by-email", "recorded_by_email", Kind.TEXT, server_owned=True),
    )
    required = frozenset({"amount", "paid_at"})
    # Over its rate limit Harvest answered 503 with Retry-After.
    statuses = {"rate_limited": 503}

    def datetime_text(self, stored: str) -> str:
        return _values.iso_z_text(stored)


class HarvestUser(Strict):
    email: str
    password: str = Field(description="scrypt hash (`python -m gateway hash-secret`) or plain")
    name: str = ""


class HarvestAuth(Section):
    users: tuple[HarvestUser, ...] = ()
    routing = ("users.*.email",)

    def credentials(self) -> tuple[Credential, ...]:
        return tuple(email_login(u.email, u.password, u.name) for u in self.users)


class HarvestBackend(BasicBackend):
    dialect: Literal["harvest"]


_PAYMENTS = "/invoices/{invoice_id}/payments"

UNIT = DialectUnit(
    codec=Harvest(),
    routes=(
        Route("GET", _PAYMENTS, Op.LIST),
        Route("POST", _PAYMENTS, Op.CREATE, 201, _PAYMENTS + "/{id}"),
        Route("GET", _PAYMENTS + "/{payment_id}", Op.GET),
        Route("GET", "/invoices/{invoice_id}/payment/{payment_id}", Op.GET),
        Route("DELETE", _PAYMENTS + "/{payment_id}", Op.DELETE),
        Route("DELETE", "/invoices/{invoice_id}/payment/{payment_id}", Op.DELETE),
    ),
    prefixes=("/invoices",),
    caller_auth=BasicAuth(),
    section=HarvestAuth,
    backend=HarvestBackend,
    suffixes=True,
    vendor=("harvest",),
    testing="dialects.testing.harvest",
)
