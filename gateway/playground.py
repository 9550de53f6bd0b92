"""The translation playground: one static page, and `POST /gateway/v1/translate` behind it."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

from aiohttp import web

import dialects
from dialects import Dialect, Format, _json
from dialects.errors import BadRequest, GatewayError, ValidationFailed

from . import trace, translation
from .http import read_body
from .state import GATEWAY

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


def catalogue() -> list[dict[str, Any]]:
    """Every dialect with the formats it speaks, its default first."""
    return [{"name": d.name, "formats": list(d.formats)} for d in dialects.DIALECTS.values()]


@cache
def _page() -> bytes:
    template = files("gateway").joinpath("static/playground.html").read_text(encoding="utf-8")
    # `<` escaped, so no value can close the script element it is written into.
    listing = _json.dumps(catalogue()).decode().replace("<", "\\u003c")
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
    """The document in every other dialect and format, each with its warnings or error."""
    server = request.app[GATEWAY].config.server
    trace.note(dialect="admin", operation="translate")
    body = _json.loads(await read_body(request, server.max_body_bytes, server.read_timeout_seconds))
    source, fmt, raw = _request(body)
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
    return web.Response(body=_json.dumps(answer), content_type="application/json")
