"""The request in flight: its id, and what the access log and metrics say of it."""

from __future__ import annotations

import random
import re
from contextvars import ContextVar
from dataclasses import dataclass

HEADER = "X-Request-Id"
# An incoming id is taken only if it is short and plain: it goes into logs and headers.
_VALID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")


@dataclass(slots=True)
class Trace:
    """Filled in as the request is served; read once it is answered."""

    request_id: str
    tenant: str | None = None
    dialect: str | None = None
    operation: str | None = None
    backend_status: int | None = None
    backend_ms: float | None = None


CURRENT: ContextVar[Trace | None] = ContextVar("trace", default=None)


def request_id(incoming: str | None) -> str:
    """The caller's id when it is a valid one, else a new random one."""
    if incoming is not None and _VALID.fullmatch(incoming):
        return incoming
    # An id correlates log lines, it guards nothing: Python's generator, reseeded from
    # the system's in every forked worker, spares a system call per request.
    return f"{random.getrandbits(128):032x}"


def begin(incoming: str | None) -> Trace:
    """A trace for a new request, current for everything the request awaits."""
    current = Trace(request_id(incoming))
    CURRENT.set(current)
    return current


def note(**fields: str | int | float | None) -> None:
    """Record who and what the current request turned out to be."""
    current = CURRENT.get()
    if current is not None:
        for name, value in fields.items():
            setattr(current, name, value)
