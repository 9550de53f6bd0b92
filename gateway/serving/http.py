"""HTTP mechanics shared by every dialect: content negotiation, bounded bodies, replies."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence

from aiohttp import web

from dialects import Dialect, Format, Reply
from dialects.errors import (
    BadRequest,
    NotAcceptable,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
)
from dialects.media import CONTENT_TYPES, SUFFIXES, media_format
from gateway.ledger import idempotency

# Request content codings taken: those aiohttp inflates (boundedly) itself, and none.
_CODINGS = ("", "identity", "gzip", "deflate")


def split_suffix(value: str) -> tuple[str, Format | None]:
    """`7.xml` -> (`7`, "xml"): the Rails format suffix on a path segment."""
    for suffix, fmt in SUFFIXES.items():
        if value.endswith(suffix):
            return value[: -len(suffix)], fmt
    return value, None


def _ranges(accept: str) -> list[tuple[str, float]]:
    ranges = []
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media:
            ranges.append((media.lower(), quality))
    return ranges


def _quality(fmt: Format, ranges: list[tuple[str, float]]) -> float:
    best, specificity = 0.0, -1
    for media, quality in ranges:
        if media == "*/*":
            rank = 0
        elif media.endswith("/*"):
            rank = 1 if media_format(media[:-1] + fmt) == fmt else -1
        else:
            rank = 2 if media_format(media) == fmt else -1
        if rank > specificity:
            best, specificity = quality, rank
    return best


def response_format(dialect: Dialect, accept: str | None, suffix: Format | None) -> Format:
    """The format to answer in: the path suffix, else the best `Accept`, else the default."""
    if suffix is not None:
        return suffix
    if not accept or not accept.strip():
        return dialect.formats[0]
    ranges = _ranges(accept)
    scored = [(_quality(fmt, ranges), -index, fmt) for index, fmt in enumerate(dialect.formats)]
    quality, _, fmt = max(scored)
    if quality <= 0:
        raise NotAcceptable(f"Can only answer in {', '.join(dialect.formats)}")
    return fmt


def body_format(dialect: Dialect, request: web.Request, fallback: Format) -> Format:
    """The format of the request body, from its Content-Type (absent: `fallback`)."""
    content_type = request.headers.get("Content-Type")
    if not content_type:
        return fallback
    fmt = media_format(content_type)
    if fmt is None or fmt not in dialect.formats:
        accepted = " or ".join(CONTENT_TYPES[f].split(";")[0] for f in dialect.formats)
        raise UnsupportedMediaType(f"Content-Type must be {accepted}")
    return fmt


class ClientClosed(Exception):
    """The client closed its connection before its request was read whole.

    No one is left to answer, and nothing went wrong on the server: the request is
    counted and logged with status 499 (`observe`), never as a 5xx, with no traceback.
    """


async def read_body(request: web.Request, limit: int, timeout: float | None = None) -> bytes:
    """The whole body, refused with 413 as soon as it passes `limit` bytes.

    aiohttp inflates gzip and deflate bodies itself, in bounded steps as they are read,
    so `limit` counts the inflated bytes: a compression bomb stops at the limit, never
    inflated whole. Other content codings are refused (415), a body that is not what its
    coding or framing says is 400, and one not received within `timeout` seconds (a
    client trickling it) is 408; the connection is then closed (see app.render_error).
    A client that hangs up before its body is whole raises `ClientClosed`.
    """
    coding = request.headers.get("Content-Encoding", "").strip().lower()
    if coding not in _CODINGS:
        raise UnsupportedMediaType("Content-Encoding must be gzip, deflate or identity")
    declared = request.content_length
    if declared is not None and declared > limit:
        raise PayloadTooLarge(f"Request body exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.content.iter_any():
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"Request body exceeds {limit} bytes")
                chunks.append(chunk)
    except TimeoutError as exc:
        raise RequestTimeout(f"Request body not received within {timeout:g} s") from exc
    except web.RequestPayloadError as exc:
        raise BadRequest("Request body could not be decoded") from exc
    except ConnectionResetError as exc:  # what aiohttp sets on the body when the peer left
        raise ClientClosed(str(exc)) from None
    return b"".join(chunks)


def reply(
    body: bytes, fmt: Format, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    response = web.Response(body=body, status=status, headers=headers)
    if body and "Content-Type" not in (headers or {}):  # an error may name its own type
        response.headers["Content-Type"] = CONTENT_TYPES[fmt]
    return response


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_address(request: web.Request, trusted: Sequence[Network]) -> str:
    """The client's address: the peer's, or, when the peer is a trusted proxy, the
    nearest address in X-Forwarded-For that is not one (proxies append on the right,
    so what a client wrote on the left is never believed)."""
    peer = request.remote or ""
    if not trusted or not _trusted(peer, trusted):  # no parsing when no proxy is trusted
        return peer
    hops = [
        hop.strip()
        for line in request.headers.getall("X-Forwarded-For", ())
        for hop in line.split(",")
    ]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            return hop if _address(hop) is not None else peer
    return peer


def _trusted(address: str, trusted: Sequence[Network]) -> bool:
    found = _address(address)
    return found is not None and any(found in network for network in trusted)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def replay(answer: Reply) -> web.Response:
    """The stored answer again, marked as a replay."""
    return web.Response(
        body=answer.body,
        status=answer.status,
        headers={**answer.headers, idempotency.REPLAYED: "true"},
    )
