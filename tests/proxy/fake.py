"""A scripted fake backend: records every request it gets, answers as the test says."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import jwt
from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Seen:
    method: str
    path: str  # with the query string
    headers: dict[str, str]
    body: bytes


class FakeBackend:
    """One catch-all route; `answer` decides each reply and may be swapped at any time.

    `answers` queued with `then` are used first, one per request, before `answer`.
    """

    def __init__(self, answer: Handler) -> None:
        self.url = ""  # set once it serves
        self.answer = answer
        self.queued: list[Handler] = []
        self.requests: list[Seen] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    def then(self, *answers: Handler) -> None:
        self.queued.extend(answers)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(Seen(request.method, request.path_qs, dict(request.headers), body))
        answer = self.queued.pop(0) if self.queued else self.answer
        return await answer(request)

    def calls(self, method: str | None = None) -> list[str]:
        """`METHOD /path?query` of each request so far (of one method, if named)."""
        return [f"{s.method} {s.path}" for s in self.requests if method in (None, s.method)]

    def __iter__(self) -> Iterator[Seen]:
        return iter(self.requests)


# --- answers -------------------------------------------------------------------------


def json_answer(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Handler:
    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=json.dumps(data).encode(),
            status=status,
            content_type="application/json",
            headers=headers,
        )

    return answer


def raw_answer(
    body: bytes, status: int = 200, content_type: str = "application/json", **headers: str
) -> Handler:
    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=body, status=status, headers={"Content-Type": content_type, **headers}
        )

    return answer


def status_answer(status: int, **headers: str) -> Handler:
    return raw_answer(b"", status, **headers)


def slow_answer(seconds: float, then: Handler) -> Handler:
    async def answer(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(seconds)  # the test server cancels this when the proxy hangs up
        return await then(request)

    return answer


def dripping_answer(interval: float, size: int = 1_000_000) -> Handler:
    """A 200 whose headers come at once and whose body comes one byte every `interval`
    seconds: always something arriving, never the whole answer in any useful time."""

    async def answer(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = size
        await response.prepare(request)
        for _ in range(size):  # the test server cancels this when the proxy hangs up
            await response.write(b" ")
            await asyncio.sleep(interval)
        return response

    return answer


async def dropped(request: web.Request) -> web.StreamResponse:
    """The connection closes without a byte of an answer."""
    assert request.transport is not None
    request.transport.close()
    raise asyncio.CancelledError


def huge_answer(size: int, *, declared: bool) -> Handler:
    """`size` bytes of a JSON array, with a Content-Length or streamed in chunks."""

    async def answer(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        if declared:
            response.content_length = size
        else:
            response.enable_chunked_encoding()
        await response.prepare(request)
        chunk = b" " * 8192
        sent = 0
        while sent < size:
            piece = chunk[: size - sent]
            await response.write(piece)
            sent += len(piece)
        await response.write_eof()
        return response

    return answer


def invoiless_payment(payment_id: str = "p-1", invoice: str = "inv-1", **extra: Any) -> Any:
    return {
        "id": payment_id,
        "invoice": invoice,
        "amount": 12.5,
        "method": "Cash",
        "paidAt": "2026-11-20",
        "notes": None,
        "sendNotification": False,
        **extra,
    }


async def invoiless_backend(request: web.Request) -> web.StreamResponse:
    """A well-behaved Invoiless backend with one payment p-1 on invoice inv-1."""
    if request.method == "GET" and request.path.endswith("/payments"):
        return await json_answer([invoiless_payment()])(request)
    if request.method == "POST":
        return await json_answer(invoiless_payment("p-2"), status=201)(request)
    if request.method == "GET":
        return await json_answer(invoiless_payment())(request)
    return web.Response(status=204)


TOKEN_KEY = b"fake-backend-token-key-32-bytes!"


def urlkey_token(app_id: str, lifetime: int) -> str:
    now = int(time.time())
    claims = {"iss": "fake", "sub": app_id, "iat": now, "exp": now + lifetime, "jti": uuid4().hex}
    return jwt.encode(claims, TOKEN_KEY, algorithm="HS256")


def urlkey_backend(*, token_lifetime: int = 3600) -> Handler:
    """A well-behaved urlKey backend: app-secret tokens, one payment on any invoice."""

    async def answer(request: web.Request) -> web.StreamResponse:
        if request.path == "/authentication":
            body = await request.json()
            token = urlkey_token(body["appId"], token_lifetime)
            data = {"accessToken": token, "name": "App", "appId": body["appId"]}
            return await json_answer(data, status=201)(request)
        payment = {
            "_id": "66c1f0e2a1b2c3d4e5f60718",
            "amount": 12.5,
            "paymentDate": "2026-11-20T00:00:00.000Z",
            "paymentMethod": "UPI",
            "notes": None,
        }
        if request.method == "POST":
            return await json_answer(payment, status=201)(request)
        return await json_answer({"payments": [payment]})(request)

    return answer
