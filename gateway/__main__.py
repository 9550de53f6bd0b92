"""Command line: serve the gateway, translate a payment between dialects, hash a secret."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from collections.abc import Sequence

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

import dialects
from dialects.errors import BadRequest, GatewayError

from . import passwords
from .app import create_app
from .config import ConfigError, load

log = logging.getLogger("gateway")

DEMO_WARNING = """
************************************************************************
*  DEMO CREDENTIALS: this configuration uses the published demo        *
*  admin token and tenant secrets. Anyone can use them. Do not expose  *
*  this gateway beyond your own machine; set demo: false and your own  *
*  secrets (python -m gateway hash-secret) before real use.            *
************************************************************************"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gateway", description=__doc__)
    parser.add_argument("--config", default="config.yaml", help="configuration file")
    parser.add_argument("--host", help="address to listen on (overrides the file)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8080)")
    parser.add_argument("--database", help="database URL, e.g. sqlite:///data/gateway.db")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="serve the gateway (the default)")
    translate = commands.add_parser(
        "translate", help="translate a payment document, stdin to stdout"
    )
    translate.add_argument(
        "--from", dest="source", required=True, choices=sorted(dialects.DIALECTS)
    )
    translate.add_argument("--to", dest="target", required=True, choices=sorted(dialects.DIALECTS))
    translate.add_argument("--format", choices=("xml", "json"), help="output format")
    hashing = commands.add_parser("hash-secret", help="hash a password or key for config.yaml")
    hashing.add_argument("--stdin", action="store_true", help="read the secret from stdin")
    return parser


def serve(args: argparse.Namespace) -> int:
    try:
        config = load(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    server = config.server.model_copy(
        update={k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    )
    config = config.model_copy(update={"server": server})
    if args.database:
        config = config.model_copy(update={"database": args.database})
    if config.demo:
        log.warning(DEMO_WARNING)
    app = create_app(config)
    web.run_app(
        app,
        host=server.host,
        port=server.port,
        access_log=log if server.access_log else None,
        print=lambda message: log.info(message.strip()),
        loop=_event_loop(),
    )
    return 0


def _event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (Linux, macOS): a faster loop, same semantics."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def translate(args: argparse.Namespace) -> int:
    source, target = dialects.get(args.source), dialects.get(args.target)
    body = sys.stdin.buffer.read()
    in_fmt = "xml" if body.lstrip().startswith(b"<") else "json"
    if in_fmt not in source.formats:
        print(f"error: {source.name} does not speak {in_fmt}", file=sys.stderr)
        return 2
    out_fmt = args.format or target.formats[0]
    if out_fmt not in target.formats:
        print(f"error: {target.name} does not speak {out_fmt}", file=sys.stderr)
        return 2
    warnings: list[str] = []
    try:
        try:
            payment = source.decode_payment(body, in_fmt).payment
            output = target.encode_payment(payment, out_fmt, warnings)
        except GatewayError as single:
            try:
                payments = source.decode_payments(body, in_fmt)
                output = target.encode_payments(payments, out_fmt, warnings)
            except GatewayError as many:
                # Report the reading that got further: a field problem, not "not a list".
                raise (many if isinstance(single, BadRequest) else single) from None
    except GatewayError as exc:
        detail = "; ".join(f"{k}: {v}" for k, v in exc.fields.items())
        print(f"error: {exc.message}{' (' + detail + ')' if detail else ''}", file=sys.stderr)
        return 1
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    sys.stdout.buffer.write(output if output.endswith(b"\n") else output + b"\n")
    return 0


def hash_secret(args: argparse.Namespace) -> int:
    secret = sys.stdin.readline().rstrip("\n") if args.stdin else getpass.getpass("Secret: ")
    if not secret:
        print("error: empty secret", file=sys.stderr)
        return 2
    print(passwords.make_hash(secret))
    return 0


class ClientFaults(logging.Filter):
    """aiohttp logs each request it cannot parse, or body it cannot inflate, at ERROR
    with a traceback: any client could fill the log so. Such a request is the client's
    fault and is answered 400; one line at INFO says enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        fault = record.exc_info[1] if record.exc_info else None
        if isinstance(fault, HttpProcessingError | web.RequestPayloadError):
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args = (
                "refused a malformed request: %s",
                (" ".join(str(fault).split())[:200],),
            )
            record.exc_info = record.exc_text = None
        return True


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("aiohttp.server").addFilter(ClientFaults())
    args = _parser().parse_args(argv)
    if args.command == "translate":
        return translate(args)
    if args.command == "hash-secret":
        return hash_secret(args)
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
