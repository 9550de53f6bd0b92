"""The application factory: routes, middlewares, and the store's lifetime."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial

from aiohttp import web, web_response

import dialects
from dialects import Dialect, Format, Reply
from dialects.errors import (
    BadRequest,
    Forbidden,
    GatewayError,
    InternalError,
    MethodNotAllowed,
    NotAcceptable,
    NotAuthenticated,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
)
from dialects.parsing import JSON_DEPTH, XML_LIMITS, XmlLimits
from dialects.unit import DialectUnit, NoRoute
from gateway.access.auth import Authenticator
from gateway.access.limits import ATTEMPT, RateLimiter, per_tenant
from gateway.access.shared import SharedBudgets
from gateway.config import Config
from gateway.events.webhooks import Deliveries
from gateway.ledger.events import Feed
from gateway.ledger.idempotency import Clock, Keys, utc_now
from gateway.ledger.rules import Ledger
from gateway.observability import metrics, trace
from gateway.observability.logs import event
from gateway.proxy.service import ProxyService
from gateway.proxy.upstream import UpstreamClient
from gateway.serving import admin, openapi, playground, routes
from gateway.serving.http import (
    ClientClosed,
    body_format,
    client_address,
    read_body,
    reply,
    response_format,
    split_suffix,
)
from gateway.serving.observe import observe
from gateway.serving.state import FORMAT, GATEWAY, TRAFFIC, Gateway, Traffic
from gateway.store import Store, open_store
from gateway.store.outbox import Outbox

log = logging.getLogger("gateway")

# aiohttp names itself and Python, with versions, in every answer's Server header (even
# in the 400 it sends for a request it cannot parse): the gateway names itself alone.
web_response.SERVER_SOFTWARE = "invoice-gateway"  # type: ignore[attr-defined]


def render_error(request: web.Request, error: GatewayError) -> web.Response:
    """The one place an error becomes a response: in the dialect the path belongs to."""
    dialect = routes.dialect_for(request.path)
    if dialect is None:
        rendered: Reply = admin.canonical_error(error)
        fmt: Format = "json"
    else:
        fmt = request.get(FORMAT) or _error_format(dialect, request)
        rendered = _token_error(request, error) or dialect.codecs[fmt].encode_error(error)
    response = reply(rendered.body, fmt, status=rendered.status, headers=dict(rendered.headers))
    if isinstance(error, PayloadTooLarge | RequestTimeout):
        response.force_close()  # the rest of the body is never read: no keep-alive after it
    return response


def _token_error(request: web.Request, error: GatewayError) -> Reply | None:
    """An error at a token endpoint in the form its unit gives such errors, if it has one."""
    unit = routes.unit_for(request.path)
    endpoint = unit.token_endpoint if unit is not None else None
    if endpoint is None or endpoint.error is None or request.path != endpoint.path:
        return None
    return endpoint.error(error)


def _error_format(dialect: Dialect, request: web.Request) -> Format:
    """For an error before any route chose a format (404, 405): suffix, Accept, default."""
    _, suffix = split_suffix(request.path)
    try:
        return response_format(
            dialect, request.headers.get("Accept"), suffix if suffix in dialect.formats else None
        )
    except NotAcceptable:
        return dialect.formats[0]


def _from_http(exc: web.HTTPException) -> GatewayError:
    if isinstance(exc, web.HTTPMethodNotAllowed):
        return MethodNotAllowed(allow=tuple(sorted(exc.allowed_methods)))
    if isinstance(exc, web.HTTPNotFound):
        return NoRoute("Not found")
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return PayloadTooLarge()
    if exc.status < 500:
        error = BadRequest(exc.reason)
        error.status = exc.status
        return error
    return InternalError()


@web.middleware
async def errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except GatewayError as error:
        if error.status >= 500:
            # The backend's and the store's troubles; each is logged where it is met.
            event(
                "failed",
                logging.WARNING,
                kind=error.kind,
                status=error.status,
                reason=error.message,
            )
        return render_error(request, error)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return render_error(request, _from_http(exc))
    except ClientClosed:
        raise  # no one to answer, and no server error (observe counts it)
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return render_error(request, InternalError())


@web.middleware
async def guard(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Per request: the configured XML/JSON limits, and the failed-login limits.

    The limits are set in context variables the parsers read, so they apply to the
    request's body and, in proxy mode, to the backend's answers alike. The request's
    `Attempt` (limits.py) is set likewise: authentication claims its identity there,
    refused while that identity is out of failures from the client address, and each
    401 or 403 is counted against the identity and the address.
    """
    gateway = request.app[GATEWAY]
    server = gateway.config.server
    XML_LIMITS.set(
        XmlLimits(server.xml_max_depth, server.xml_max_elements, server.xml_max_attributes)
    )
    JSON_DEPTH.set(server.json_max_depth)
    attempt = gateway.limits.attempt(client_address(request, server.trusted_proxies))
    token = ATTEMPT.set(attempt)
    try:
        return await handler(request)
    except (NotAuthenticated, Forbidden):
        metrics.AUTH_FAILURES.labels(_dialect_label(request)).inc()
        if attempt.failed():
            dialect, kind, name = attempt.identity or ("", "", "")
            event("auth_lockout", logging.WARNING, address=attempt.address, bucket="identity",
                  dialect=dialect, identity=f"{kind}:{name}", path=request.path)  # fmt: skip
        raise
    finally:
        ATTEMPT.reset(token)


def _dialect_label(request: web.Request) -> str:
    unit = routes.unit_for(request.path)
    return unit.name if unit is not None else "admin"


async def issue_token(unit: DialectUnit, request: web.Request) -> web.Response:
    """A dialect's token endpoint: an app's secret for an access token."""
    trace.note(dialect=unit.name, operation="token")
    gateway = request.app[GATEWAY]
    endpoint = unit.token_endpoint
    assert endpoint is not None
    request[FORMAT] = "json"
    response_format(unit.codec, request.headers.get("Accept"), None)  # 406, as on every path
    if endpoint.body_format == "json":
        body_format(unit.codec, request, "json")  # 415
    elif request.content_type != "application/x-www-form-urlencoded":
        raise UnsupportedMediaType("Content-Type must be application/x-www-form-urlencoded")
    server = gateway.config.server
    body = await read_body(request, server.max_body_bytes, server.read_timeout_seconds)
    login, secret = endpoint.read(body, request.headers)
    token, credential = await gateway.auth.issue(unit, login, secret)
    if endpoint.check is not None:
        endpoint.check(body, credential)
    status, media_type, answer = endpoint.answer(token, credential, gateway.auth.token_lifetime)
    return web.Response(body=answer, status=status, content_type=media_type)


def create_app(
    config: Config,
    store: Store | None = None,
    *,
    clock: Clock = utc_now,
    deliver: bool = True,
) -> web.Application:
    """The gateway as an aiohttp application; the store opens on start-up, closes on cleanup.

    `clock` is the wall clock idempotency keys expire by, events are timed and kept by,
    and whose day the ledger keeps (what is overdue, a payment's default date); tests
    move it. `deliver=False` leaves webhook deliveries to `gateway.deliveries.step()`
    (tests call it, moving the clock) instead of the background loops.
    """
    timeout = config.server.read_timeout_seconds
    app = web.Application(
        middlewares=[observe, errors, guard],
        client_max_size=config.server.max_body_bytes,
        # aiohttp has no header read timeout of its own, but its keep-alive timer runs
        # from the connection's opening (and from each answer) until the next request's
        # headers are complete: as `read_timeout`, it cuts off a client that trickles its
        # headers, or idles, within that time. No lingering: a body left unread (refused
        # before or while it was read) is not drained, since draining a gzip body means
        # inflating all of it on the event loop while every other client waits; the
        # connection is closed after the answer instead. Handler arguments, so any
        # runner (run_app, the test server) applies them.
        handler_args={"keepalive_timeout": timeout, "lingering_time": 0},
    )
    store = store or open_store(
        config.database,
        synchronous=config.sqlite_synchronous,
        pool_size=config.database_pool_size,
        acquire_timeout=config.database_acquire_timeout_seconds,
        statement_cache_size=config.database_statement_cache_size,
    )
    store.outbox = Outbox(clock)  # events are timed by the gateway's clock
    shared = (
        SharedBudgets(store, config.server.rate_limit_batch)
        if config.server.rate_limits == "database"
        else None
    )
    gateway = Gateway(
        config=config,
        auth=Authenticator(config, clock=clock),
        store=store,
        ledger=Ledger(store, clock),
        limits=RateLimiter(
            per_tenant(config),
            failures=config.server.auth_failures,
            address_failures=config.server.auth_address_failures,
            global_failures=config.server.auth_global_failures,
            unauthenticated=config.server.translate_rate,
            wait_limit=timeout,
            shared=shared,
        ),
        keys=Keys(store, config.idempotency, clock),
        feed=Feed(store, config.events, clock),
        deliveries=Deliveries(store, config, clock),
    )
    for name, tenant in config.tenants.items():
        if tenant.backend is not None:
            gateway.proxies[name] = ProxyService(name, UpstreamClient(tenant.backend), store)
    app[GATEWAY] = gateway
    app[TRAFFIC] = Traffic()

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        await store.open()
        for proxy in gateway.proxies.values():
            await proxy.client.open()
        purging = asyncio.create_task(gateway.keys.purge_forever())
        retiring = asyncio.create_task(gateway.feed.purge_forever())
        await gateway.deliveries.open()
        if deliver:
            gateway.deliveries.start()
        yield
        await gateway.deliveries.close()
        if shared is not None:
            await shared.close()
        for task in (purging, retiring):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for proxy in gateway.proxies.values():
            await proxy.client.close()
        await store.close()

    app.cleanup_ctx.append(lifetime)
    routes.add_routes(app)
    admin.add_routes(app)
    playground.add_pool(app, config.server.translate_threads)
    openapi.add_routes(app)
    for unit in dialects.units().values():
        if unit.token_endpoint is not None:
            app.router.add_post(unit.token_endpoint.path, partial(issue_token, unit))
    return app
