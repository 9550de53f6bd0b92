"""A backend's error status, as the canonical error the caller's dialect renders.

One table: the statuses that have an error of their own, then each class of status
(server errors, client errors, anything else a backend should not answer) for the
rest. A backend's own message and fields are read only for the statuses whose error
carries them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from dialects.errors import (
    BadRequest,
    Conflict,
    GatewayError,
    LedgerRefused,
    NotFound,
    NotSupported,
    PayloadTooLarge,
    UpstreamError,
    UpstreamUnavailable,
    ValidationFailed,
)

# A backend's error message and its fields (canonical names), read from its body.
Details = Callable[[], tuple[str, dict[str, str]]]


@dataclass(frozen=True)
class Refusal:
    """A backend's answer with an error status, as far as the caller's error needs it."""

    status: int
    retry_after: int | None  # its Retry-After in seconds, if it gave a readable one
    details: Details
    missing: str = "Not found"  # what a 404 means was not found


def _busy(refusal: Refusal) -> GatewayError:
    return UpstreamUnavailable("The backend is busy", retry_after=refusal.retry_after or 1)


def _credentials(refusal: Refusal) -> GatewayError:
    return UpstreamError("The backend refused the gateway's credentials")


def _missing(refusal: Refusal) -> GatewayError:
    return NotFound(refusal.missing)


def _unsupported(refusal: Refusal) -> GatewayError:
    return NotSupported("The backend does not support this operation")


def _conflict(refusal: Refusal) -> GatewayError:
    message, fields = refusal.details()
    return Conflict(message, fields=fields)


def _too_large(refusal: Refusal) -> GatewayError:
    message, _ = refusal.details()
    return PayloadTooLarge(message)


def _unprocessable(refusal: Refusal) -> GatewayError:
    message, fields = refusal.details()
    return LedgerRefused(message, fields=fields)


def _bad_request(refusal: Refusal) -> GatewayError:
    """A 400 naming fields is a validation failure; any other 4xx a bad request."""
    message, fields = refusal.details()
    if refusal.status == 400 and fields:
        return ValidationFailed(message, fields=fields)
    return BadRequest(message, fields=fields)


def _failed(refusal: Refusal) -> GatewayError:
    return UpstreamError(f"The backend failed ({refusal.status})")


def _unexpected(refusal: Refusal) -> GatewayError:
    return UpstreamError(f"The backend answered {refusal.status}")


# The statuses with an error of their own. A 5xx other than 503 is the backend's own
# failure whatever it says (501 too: a route it lists but does not serve).
BY_STATUS: Mapping[int, Callable[[Refusal], GatewayError]] = {
    400: _bad_request,
    401: _credentials,
    403: _credentials,
    404: _missing,
    405: _unsupported,
    409: _conflict,
    413: _too_large,
    422: _unprocessable,
    429: _busy,
    503: _busy,
}
# The rest by class, first match: (lowest status, error).
BY_CLASS: tuple[tuple[int, Callable[[Refusal], GatewayError]], ...] = (
    (500, _failed),
    (400, _bad_request),
    (0, _unexpected),
)


def caller_error(refusal: Refusal) -> GatewayError:
    """The error the caller is answered for a backend's error status."""
    by_status = BY_STATUS.get(refusal.status)
    if by_status is not None:
        return by_status(refusal)
    for lowest, error in BY_CLASS:
        if refusal.status >= lowest:
            return error(refusal)
    return _unexpected(refusal)
