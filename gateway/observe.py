"""Every request observed once: its id, the access log line, and the drain's count."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from . import trace
from .logs import event
from .state import GATEWAY, TRAFFIC, Traffic

_CUT = 499  # the status logged for a request cut off by the end of a drain

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost: sees each request as the client does, errors rendered."""
    current = trace.begin(request.headers.get(trace.HEADER))
    traffic = request.app[TRAFFIC]
    traffic.in_flight += 1
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers[trace.HEADER] = current.request_id
        if traffic.draining:
            response.force_close()  # no next request on this connection
        return response
    except web.HTTPException as exc:  # a redirect, passed on by the error middleware
        status = exc.status
        exc.headers[trace.HEADER] = current.request_id
        raise
    except asyncio.CancelledError:
        status = _CUT
        raise
    finally:
        _count(traffic, status)
        if request.app[GATEWAY].config.server.access_log:
            _access(request, current, status, time.perf_counter() - started)


def _count(traffic: Traffic, status: int) -> None:
    traffic.in_flight -= 1
    if traffic.draining:
        if status == _CUT:
            traffic.cut += 1
        else:
            traffic.drained += 1


def _access(request: web.Request, current: trace.Trace, status: int, seconds: float) -> None:
    event(
        "request",
        request_id=current.request_id,
        method=request.method,
        path=request.path,
        status=status,
        duration_ms=round(seconds * 1000, 3),
        tenant=current.tenant,
        dialect=current.dialect,
        operation=current.operation,
        backend_status=current.backend_status,
        backend_ms=current.backend_ms,
    )
