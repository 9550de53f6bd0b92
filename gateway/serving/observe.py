"""Every request observed once: its id, the access log line, and the drain's count."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.observability import trace
from gateway.observability.logs import event
from gateway.observability.metrics import IN_FLIGHT, REQUEST_SECONDS, REQUESTS, child
from gateway.serving.http import ClientClosed
from gateway.serving.state import GATEWAY, TRAFFIC, Traffic

# The status logged and counted for a request that got no answer: cut off by the end
# of a drain, or left by its client before its body arrived (nginx's "client closed
# request"). Never a 5xx: neither is a server error.
_CUT = CLIENT_CLOSED = 499
_UNROUTED = "none"  # the label of what no route or handler names

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost: sees each request as the client does, errors rendered."""
    current = trace.begin(request.headers.get(trace.HEADER))
    traffic = request.app[TRAFFIC]
    traffic.in_flight += 1
    IN_FLIGHT.inc()
    started = time.perf_counter()
    status = 500
    cut = False
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
    except ClientClosed:
        status = CLIENT_CLOSED
        response = web.Response(status=status)  # for aiohttp, which finds no one to send it to
        response.force_close()
        return response
    except asyncio.CancelledError:
        status, cut = _CUT, True
        raise
    finally:
        seconds = time.perf_counter() - started
        _count(traffic, cut)
        config = request.app[GATEWAY].config
        if config.metrics.enabled:
            _measure(request, current, status, seconds)
        if config.server.access_log:
            _access(request, current, status, seconds)


def _measure(request: web.Request, current: trace.Trace, status: int, seconds: float) -> None:
    """The request in the metrics, labelled by its route (never by its raw path)."""
    dialect = current.dialect or _UNROUTED
    if current.operation is None:
        handler = request.match_info.handler
        name = getattr(handler, "__name__", None)
        current.operation = name if isinstance(name, str) and name else _UNROUTED
    operation = current.operation
    child(REQUESTS, dialect, operation, str(status)).inc()
    child(REQUEST_SECONDS, dialect, operation).observe(seconds)


def _count(traffic: Traffic, cut: bool) -> None:
    IN_FLIGHT.dec()
    traffic.in_flight -= 1
    if traffic.draining:
        if cut:
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
