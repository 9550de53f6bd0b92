"""The translation playground: one static page, and `POST /gateway/v1/translate` behind it."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache, partial
from importlib.resources import files
from typing import Any, TypeVar

from aiohttp import web

import dialects
from dialects import Dialect, Format
from dialects.errors import BadRequest, GatewayError, TooManyRequests, ValidationFailed
from dialects.parsing import json_dumps, json_loads
from gateway.ledger import translation
from gateway.observability import metrics, trace
from gateway.serving.http import client_address, read_body
from gateway.serving.state import GATEWAY

T = TypeVar("T")
_WAITING_PER_THREAD = 16
TOKEN_BYTES = 4096  # a translation spends one token of its address's budget per 4 KiB begun

PAGE = "/gateway/playground"
TRANSLATE = "/gateway/v1/translate"
# What the endpoint takes (`_request` checks it field by field).
REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["from", "document"],
    "properties": {
        "from": {"type": "string", "description": "the source dialect"},
        "format": {"enum": ["xml", "json"], "description": "default: sniffed"},
        "document": {"type": "string", "minLength": 1},
    },
}


class Pool:
    """Threads that translations run on, off the event loop, so a large document does not
    hold every other request up; at most 16 waiting per thread, then 429."""

    def __init__(self, threads: int) -> None:
        self._threads = ThreadPoolExecutor(threads, thread_name_prefix="translate")
        self._bound, self._waiting = threads * _WAITING_PER_THREAD, 0

    async def run(self, work: Callable[[], T]) -> T:
        """`work()` on a thread, in a copy of this context (the XML and JSON limits)."""
        if self._waiting >= self._bound:
            metrics.RATE_LIMITED.labels("admin", "translate_busy").inc()
            raise TooManyRequests("Too many translations waiting; retry later", retry_after=1)
        self._waiting += 1
        try:
            run = partial(contextvars.copy_context().run, work)
            return await asyncio.get_running_loop().run_in_executor(self._threads, run)
        finally:
            self._waiting -= 1

    @property
    def waiting(self) -> int:
        """Translations taken in and not yet done (running or waiting for a thread)."""
        return self._waiting

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)


POOL = web.AppKey("translations", Pool)


def add_pool(app: web.Application, threads: int) -> None:
    """The app's translation threads, shut down with it."""
    app[POOL] = Pool(threads)

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        yield
        app[POOL].close()

    app.cleanup_ctx.append(lifetime)


def catalogue() -> list[dict[str, Any]]:
    """Every dialect with the formats it speaks, its default first."""
    return [{"name": d.name, "formats": list(d.formats)} for d in dialects.DIALECTS.values()]


@cache
def _page() -> bytes:
    template = (
        files("gateway.serving").joinpath("static/playground.html").read_text(encoding="utf-8")
    )
    # `<` escaped, so no value can close the script element it is written into.
    listing = json_dumps(catalogue()).decode().replace("<", "\\u003c")
    return template.replace("__DIALECTS__", listing).encode()


async def page(request: web.Request) -> web.Response:
    """The translation playground page."""
    return web.Response(body=_page(), content_type="text/html", charset="utf-8")


def _request(body: Any) -> tuple[Dialect, Format, bytes]:
    if not isinstance(body, dict):
        raise BadRequest("Expected a JSON object")
    problems: dict[str, str] = {}
    source = body.get("from")
    if not isinstance(source, str) or source not in dialects.DIALECTS:
        problems["from"] = f"must be one of {', '.join(dialects.DIALECTS)}"
    document = body.get("document")
    if not isinstance(document, str) or not document.strip():
        problems["document"] = "must be a non-empty string"
    fmt = body.get("format")
    if fmt is not None and fmt not in ("xml", "json"):
        problems["format"] = "must be xml or json"
    if problems:
        raise ValidationFailed(fields=problems)
    assert isinstance(source, str) and isinstance(document, str)
    raw = document.encode("utf-8", "surrogatepass")
    return dialects.get(source), fmt or translation.sniff(raw), raw


def _one(document: translation.Document, target: Dialect, fmt: Format) -> dict[str, Any]:
    result: dict[str, Any] = {"dialect": target.name, "format": fmt, "document": None}
    try:
        output, warnings = translation.encode(document, target, fmt)
    except GatewayError as exc:
        result.update(warnings=[], error={"message": exc.message, "fields": exc.fields})
        return result
    result.update(document=output.decode(), warnings=warnings, error=None)
    return result


async def translate(request: web.Request) -> web.Response:
    """The document in every other dialect and format, each with its warnings or error.

    No credentials are asked for, so each client address has a budget of these
    (`server.translate_rate`, a token per 4 KiB of body begun: the work grows with the
    document), a body has a size limit (`server.translate_max_bytes`),
    and the work runs on the translation threads, not the event loop."""
    gateway = request.app[GATEWAY]
    server = gateway.config.server
    trace.note(dialect="admin", operation="translate")
    address = client_address(request, server.trusted_proxies)
    gateway.limits.work(address, "translate")
    body = await read_body(request, server.translate_max_bytes, server.read_timeout_seconds)
    gateway.limits.more_work(address, (len(body) - 1) // TOKEN_BYTES)  # one per 4 KiB begun
    answer = await request.app[POOL].run(partial(_translate, body))
    return web.Response(body=answer, content_type="application/json")


def _translate(body: bytes) -> bytes:
    source, fmt, raw = _request(json_loads(body))
    document = translation.decode(source, raw, fmt)
    results = [
        _one(document, target, out)
        for target in dialects.DIALECTS.values()
        for out in target.formats
        if (target.name, out) != (source.name, fmt)
    ]
    answer = {
        "from": source.name,
        "format": fmt,
        "count": len(document.payments),
        "many": document.many,
        "translations": results,
    }
    return json_dumps(answer)
