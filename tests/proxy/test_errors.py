"""The table of a backend's error status to the caller's error, over every status class."""

from __future__ import annotations

import pytest

from dialects import errors
from gateway.proxy.errors import BY_STATUS, Refusal, caller_error

FIELDS = {"amount": "must be positive"}


class Body:
    """A backend's error body: its message and fields, counting how often it is read."""

    def __init__(self, fields: dict[str, str]) -> None:
        self.fields = fields
        self.reads = 0

    def __call__(self) -> tuple[str, dict[str, str]]:
        self.reads += 1
        return "the backend's words", dict(self.fields)


# status, the backend's fields, the caller's error, its message, whether the body was read
CASES: list[tuple[int, dict[str, str], type[errors.GatewayError], str, bool]] = [
    # 3xx: a backend answers a proxied call with none of these
    (300, {}, errors.UpstreamError, "The backend answered 300", False),
    (304, {}, errors.UpstreamError, "The backend answered 304", False),
    (399, {}, errors.UpstreamError, "The backend answered 399", False),
    # 4xx with an error of their own
    (400, FIELDS, errors.ValidationFailed, "the backend's words", True),
    (400, {}, errors.BadRequest, "the backend's words", True),
    (401, FIELDS, errors.UpstreamError, "The backend refused the gateway's credentials", False),
    (403, {}, errors.UpstreamError, "The backend refused the gateway's credentials", False),
    (404, FIELDS, errors.NotFound, "Payment not found", False),
    (405, {}, errors.NotSupported, "The backend does not support this operation", False),
    (409, FIELDS, errors.Conflict, "the backend's words", True),
    (413, {}, errors.PayloadTooLarge, "the backend's words", True),
    (422, FIELDS, errors.LedgerRefused, "the backend's words", True),
    (429, {}, errors.UpstreamUnavailable, "The backend is busy", False),
    # the rest of 4xx: the caller's request, refused
    (402, FIELDS, errors.BadRequest, "the backend's words", True),
    (410, {}, errors.BadRequest, "the backend's words", True),
    (499, FIELDS, errors.BadRequest, "the backend's words", True),
    # 5xx: the backend failed, unless it says it is busy
    (500, FIELDS, errors.UpstreamError, "The backend failed (500)", False),
    (501, {}, errors.UpstreamError, "The backend failed (501)", False),
    (502, {}, errors.UpstreamError, "The backend failed (502)", False),
    (503, {}, errors.UpstreamUnavailable, "The backend is busy", False),
    (504, {}, errors.UpstreamError, "The backend failed (504)", False),
    (599, {}, errors.UpstreamError, "The backend failed (599)", False),
]


@pytest.mark.parametrize(("status", "fields", "error", "message", "read"), CASES)
def test_each_status_class_becomes_its_callers_error(
    status: int, fields: dict[str, str], error: type[errors.GatewayError], message: str, read: bool
) -> None:
    body = Body(fields)

    found = caller_error(Refusal(status, None, body, "Payment not found"))

    assert type(found) is error
    assert found.message == message
    assert found.fields == (fields if read else {})
    assert body.reads == int(read), "a body is read only where its error carries it"


def test_every_status_with_an_error_of_its_own_is_covered() -> None:
    assert set(BY_STATUS) <= {status for status, *_ in CASES}


@pytest.mark.parametrize("status", [429, 503])
def test_a_busy_backend_passes_its_retry_after_on_or_asks_for_a_second(status: int) -> None:
    told = caller_error(Refusal(status, 30, Body({})))
    untold = caller_error(Refusal(status, None, Body({})))

    assert (told.retry_after, untold.retry_after) == (30, 1)
    assert told.headers() == {"Retry-After": "30"}
