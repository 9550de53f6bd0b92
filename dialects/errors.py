"""The gateway's one error tree; each dialect renders it in its own shape.

    GatewayError                 kind             default status
    +-- BadRequest               bad_request      400  (malformed body, bad header)
    |   +-- BadQuery             bad_request      400  (a list query that cannot be read)
    +-- ValidationFailed         validation       422  (field problems, keyed by canonical field)
    +-- NotAuthenticated         unauthenticated  401
    |   +-- TokenExpired         unauthenticated  401  (a bearer token past its expiry)
    +-- Forbidden                forbidden        403
    +-- NotFound                 not_found        404
    +-- MethodNotAllowed         method           405
    +-- NotAcceptable            not_acceptable   406
    +-- RequestTimeout           request_timeout  408  (body not received in time)
    +-- Conflict                 conflict         409
    |   +-- StaleVersion         stale_version    409  (a change sent with an outdated version)
    +-- PayloadTooLarge          too_large        413
    +-- UnsupportedMediaType     media_type       415
    +-- LedgerRefused            ledger           422  (a ledger rule refused the payment)
    |   +-- Overpayment          ledger           422  (more than is due)
    |   +-- NotPayable           ledger           422  (invoice draft, paid or void)
    |   +-- Unapplied            unapplied        422  (paid more than its invoices take)
    |   +-- CustomerMismatch     customer_mismatch 422 (an invoice of another customer)
    |   +-- SplitUnsupported     split_unsupported 422 (split across invoices; not carried)
    +-- KeyReused                key_reused       422  (Idempotency-Key sent with another request)
    +-- TooManyRequests          rate_limited     429
    +-- NotSupported             not_supported    501
    +-- UpstreamError            upstream         502
    |   +-- UpstreamUnavailable  unavailable      503
    |   +-- UpstreamTimeout      timeout          504
    +-- ServiceUnavailable       unavailable      503  (the database is out of reach)
    +-- InternalError            internal         500

Core code raises these knowing no dialect; field keys are canonical field names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class GatewayError(Exception):
    kind = "internal"
    status = 500
    default_message = "Internal error"

    def __init__(
        self,
        message: str | None = None,
        *,
        fields: Mapping[str, str] | None = None,
        retry_after: int | None = None,
        allow: tuple[str, ...] = (),
    ) -> None:
        self.message = message or self.default_message
        self.fields = dict(fields or {})
        self.retry_after = retry_after
        self.allow = allow
        # The fields (wire names) of the batch item this refusal answers, as it was
        # sent, for dialects that echo a refused item.
        self.sent: Mapping[str, Any] | None = None
        super().__init__(self.message)

    def headers(self) -> dict[str, str]:
        """The HTTP headers this error carries in every dialect."""
        headers: dict[str, str] = {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        if self.allow:
            headers["Allow"] = ", ".join(self.allow)
        return headers


class BadRequest(GatewayError):
    kind, status, default_message = "bad_request", 400, "Bad request"


class BadQuery(BadRequest):
    default_message = "The query cannot be read"


class ValidationFailed(GatewayError):
    kind, status, default_message = "validation", 422, "Validation failed"


class NotAuthenticated(GatewayError):
    kind, status, default_message = "unauthenticated", 401, "Invalid login"


class TokenExpired(NotAuthenticated):
    """A bearer token that was valid and has expired: the caller should fetch a new one."""


class Forbidden(GatewayError):
    kind, status, default_message = "forbidden", 403, "Forbidden"


class NotFound(GatewayError):
    kind, status, default_message = "not_found", 404, "Not found"


class MethodNotAllowed(GatewayError):
    kind, status, default_message = "method", 405, "Method not allowed"


class NotAcceptable(GatewayError):
    kind, status, default_message = "not_acceptable", 406, "No acceptable representation"


class RequestTimeout(GatewayError):
    kind, status, default_message = "request_timeout", 408, "Request body not received in time"


class Conflict(GatewayError):
    kind, status, default_message = "conflict", 409, "Conflict"


class StaleVersion(Conflict):
    """A change that names the version it expects, which is no longer the payment's."""

    kind, default_message = "stale_version", "The payment was changed since that version"


class PayloadTooLarge(GatewayError):
    kind, status, default_message = "too_large", 413, "Request body too large"


class UnsupportedMediaType(GatewayError):
    kind, status, default_message = "media_type", 415, "Unsupported content type"


class LedgerRefused(GatewayError):
    kind, status, default_message = "ledger", 422, "Payment refused"


class Overpayment(LedgerRefused):
    default_message = "Payment exceeds the amount due"


class NotPayable(LedgerRefused):
    default_message = "Invoice takes no payments"


class Unapplied(LedgerRefused):
    """A payment's amount exceeds what its allocations settle: the ledger keeps no
    customer credit, so money that settles no invoice is refused, never kept or dropped."""

    kind, default_message = "unapplied", "Payment amount exceeds the amounts applied to invoices"


class CustomerMismatch(LedgerRefused):
    """A payment's customer is not the customer of an invoice it settles."""

    kind, default_message = "customer_mismatch", "Payment customer does not match the invoice"


class SplitUnsupported(LedgerRefused):
    """A payment split across invoices, toward a system that holds one invoice per payment."""

    kind = "split_unsupported"
    default_message = "A payment applied to several invoices is not supported here"


class KeyReused(GatewayError):
    kind, status = "key_reused", 422
    default_message = "Idempotency-Key was already used for another request"


class TooManyRequests(GatewayError):
    kind, status, default_message = "rate_limited", 429, "Too many requests"


class NotSupported(GatewayError):
    kind, status, default_message = "not_supported", 501, "Not supported by the backend"


class UpstreamError(GatewayError):
    kind, status, default_message = "upstream", 502, "Bad gateway"


class UpstreamUnavailable(UpstreamError):
    kind, status, default_message = "unavailable", 503, "Service unavailable"


class UpstreamTimeout(UpstreamError):
    kind, status, default_message = "timeout", 504, "Gateway timeout"


class ServiceUnavailable(GatewayError):
    kind, status, default_message = "unavailable", 503, "Service unavailable"


class InternalError(GatewayError):
    pass
