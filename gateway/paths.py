"""Each dialect's native endpoints: method, path, operation and success answer."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Op(Enum):
    LIST = "list"
    GET = "get"
    CREATE = "create"
    REPLACE = "replace"
    PATCH = "patch"
    DELETE = "delete"


@dataclass(frozen=True)
class Route:
    """One native endpoint: its method, path, operation, and how success is answered."""

    method: str
    path: str
    op: Op
    status: int = 200
    location: str | None = None


ROUTES: dict[str, tuple[Route, ...]] = {
    "harvest": (
        Route("GET", "/invoices/{invoice_id}/payments", Op.LIST),
        Route("POST", "/invoices/{invoice_id}/payments", Op.CREATE, 201,
              "/invoices/{invoice_id}/payments/{id}"),
        Route("GET", "/invoices/{invoice_id}/payments/{payment_id}", Op.GET),
        Route("GET", "/invoices/{invoice_id}/payment/{payment_id}", Op.GET),
        Route("DELETE", "/invoices/{invoice_id}/payments/{payment_id}", Op.DELETE),
        Route("DELETE", "/invoices/{invoice_id}/payment/{payment_id}", Op.DELETE),
    ),
    "fastbill": (
        Route("GET", "/api/invoice-payments", Op.LIST),
        Route("POST", "/api/invoice-payments", Op.CREATE, 201, "/api/invoice-payments/{id}"),
        Route("GET", "/api/invoice-payments/{payment_id}", Op.GET),
        Route("DELETE", "/api/invoice-payments/{payment_id}", Op.DELETE),
    ),
    "invoiless": (
        Route("POST", "/v1/invoices/{invoice_id}/payments", Op.CREATE, 201, "/v1/payments/{id}"),
        Route("GET", "/v1/invoices/{invoice_id}/payments", Op.LIST),
        Route("GET", "/v1/payments/{payment_id}", Op.GET),
        Route("PUT", "/v1/payments/{payment_id}", Op.REPLACE),
        Route("PATCH", "/v1/payments/{payment_id}", Op.PATCH),
        Route("DELETE", "/v1/payments/{payment_id}", Op.DELETE, 204),
    ),
    "urlkey": (
        Route("POST", "/businesses/{business}/invoices/{invoice_id}/payments", Op.CREATE, 201),
        Route("GET", "/businesses/{business}/invoices/{invoice_id}/payments", Op.LIST),
    ),
}  # fmt: skip

# Which dialect answers a path, for errors raised before any route matched.
PREFIXES: tuple[tuple[str, str], ...] = (
    ("/invoices", "harvest"),
    ("/api/", "fastbill"),
    ("/v1/", "invoiless"),
    ("/businesses/", "urlkey"),
    ("/authentication", "urlkey"),
)
