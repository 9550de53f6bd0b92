"""The bare baseline: an aiohttp app on uvloop with one JSON POST handler and one GET.

    python -m benchmarks.bare --port 8081

What the gateway's figures are divided by: the same framework, server and event loop,
doing nothing but reading a small JSON body and answering 201, or answering a GET.
"""

from __future__ import annotations

import argparse
import asyncio
import json

import uvloop
from aiohttp import web

_ANSWER = b'{"id":"1","amount":1.25}'


async def create(request: web.Request) -> web.Response:
    document = json.loads(await request.read())
    body = json.dumps({"id": "1", "amount": document.get("amount")}).encode()
    return web.Response(body=body, status=201, content_type="application/json")


async def show(request: web.Request) -> web.Response:
    return web.Response(body=_ANSWER, content_type="application/json")


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def app() -> web.Application:
    application = web.Application()
    application.router.add_post("/things", create)
    application.router.add_get("/things/1", show)
    application.router.add_get("/healthz", healthz)
    return application


def serve(application: web.Application, port: int) -> None:
    """On 127.0.0.1 and uvloop, without aiohttp's own access log."""
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    web.run_app(application, host="127.0.0.1", port=port, access_log=None, print=None, loop=loop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    serve(app(), parser.parse_args().port)


if __name__ == "__main__":
    main()
