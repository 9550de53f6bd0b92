"""Command line: serve the gateway, migrate its database, translate a payment, hash a secret."""

# ruff: noqa: E402  (the SIGINT handler is set before the imports, which take most of a start)
from __future__ import annotations

import signal
import sys


def _interrupted(signum: int, frame: object) -> None:
    """Ctrl-C before the gateway serves (imports, migrations): leave quietly, status 130.

    Once it serves, its event loop takes SIGINT over and drains (gateway.process). The
    exit cuts short whatever start-up was awaiting (a database connection being opened):
    asyncio's complaints about what it left unfinished are no news to the one who
    pressed Ctrl-C, so its logger is silenced on the way out.
    """
    import logging

    logging.getLogger("asyncio").disabled = True
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, _interrupted)

import argparse
import asyncio
import getpass
import logging
import os
from argparse import SUPPRESS
from collections.abc import Callable, Sequence
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

import dialects
from dialects.errors import GatewayError
from dialects.parsing import ascii_number
from gateway.config import Config, ConfigError, hashes, load, override
from gateway.ledger import translation
from gateway.observability import logs

if TYPE_CHECKING:
    from gateway.processes.accept import Seat
    from gateway.store import Store

# The server's machinery (aiohttp's server, the stores and their drivers, the processes)
# is imported by the commands that serve or migrate (`_serving`): `translate` and
# `hash-secret` start in less than half the time without it.

log = logging.getLogger("gateway")
VERSION = version("invoice-payments-gateway")


def _count(text: str) -> int:
    number = ascii_number(text, digits=3)
    if number is None or not 1 <= number <= 256:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of processes (1-256)")
    return number


# The options of `serve`; accepted before the subcommand as well (`--port 9000 serve`).
_SERVE_OPTIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("--config", {"default": "config.yaml", "help": "configuration file"}),
    ("--host", {"help": "address to listen on (overrides the file)"}),
    ("--port", {"type": int, "help": "port to listen on (default 8080)"}),
    ("--database", {"help": "database URL, e.g. sqlite:///data/gateway.db"}),
    ("--workers", {"type": _count, "default": 1, "help": "processes serving the port"}),
    ("--log-format", {"choices": ("text", "json"), "default": "text", "help": "log lines as"}),
    ("--log-level", {"choices": logs.LEVELS, "default": "info", "help": "least level logged"}),
)


def _serve_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """After the subcommand an option left out keeps what was given before it."""
    for flag, spec in _SERVE_OPTIONS:
        parser.add_argument(flag, **(spec if defaults else {**spec, "default": SUPPRESS}))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gateway", description=__doc__)
    parser.add_argument("--version", action="version", version=f"invoice-gateway {VERSION}")
    _serve_options(parser, defaults=True)
    commands = parser.add_subparsers(dest="command")
    _serve_options(
        commands.add_parser("serve", help="serve the gateway (the default)"), defaults=False
    )
    _serve_options(
        commands.add_parser("migrate", help="apply the database migrations, then exit"),
        defaults=False,
    )
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
    from gateway.processes import lifecycle
    from gateway.store import StoreError, open_store

    logging.getLogger("aiohttp.server").addFilter(ClientFaults())
    try:
        config = _configured(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        store = open_store(
            config.database,
            synchronous=config.sqlite_synchronous,
            pool_size=1,
            statement_cache_size=config.database_statement_cache_size,
        )
    except ValueError as exc:  # a URL of no engine it knows: the message names it
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        migrate(store)  # a database out of reach or too new stops us here
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2  # as every start-up that cannot go on (gateway.process)
    except Exception as exc:  # what a driver raises on a URL it cannot use (a bad port, ...)
        print(f"error: {lifecycle.database_failure(config.database, exc)}", file=sys.stderr)
        return 2
    if args.command == "migrate":
        log.info("database migrated")
        return 0
    if args.workers == 1 and config.events.deliveries == "inline":
        return _serve(lambda: _configured(args), args.config)
    return _supervise(args)


def _supervise(args: argparse.Namespace) -> int:
    """`--workers N`: bind the port, then fork N workers serving it (gateway.workers),
    and with `events.deliveries: process` one more process delivering (gateway.delivery)."""
    from gateway.processes import lifecycle, workers

    config = _configured(args)
    if config.database == "sqlite://:memory:":
        needs = "--workers" if args.workers > 1 else "events.deliveries: process"
        print(f"error: {needs} needs a database file or server, not :memory:", file=sys.stderr)
        return 2
    # One token secret for all workers (when none is set), so each accepts the others'.
    secret = config.token_secret or os.urandom(32).hex()

    def reread() -> Config:
        read = _configured(args)
        return read if read.token_secret else read.model_copy(update={"token_secret": secret})

    try:
        port = workers.Listener(config.server.host, config.server.port, args.workers)
    except OSError as exc:
        host, number = config.server.host, config.server.port
        print(f"error: {lifecycle.listen_failure(host, number, exc)}", file=sys.stderr)
        return 2
    separate = config.events.deliveries == "process"
    log.info("serving with %d workers%s", args.workers, " and a delivery process" * separate)
    serve = workers.Supervisor(
        args.workers,
        lambda slot: _serve(reread, args.config, port.seat(slot)),
        port.table,
        deliver=(lambda: _deliver(reread, args.config)) if separate else None,
        nice=config.events.delivery_nice,
    )
    return serve.run()


def _serve(reread: Callable[[], Config], path: str, seat: Seat | None = None) -> int:
    from gateway.processes import lifecycle

    loop = _event_loop()
    try:
        loop.run_until_complete(lifecycle.serve(reread, path, seat=seat))
    except (ConfigError, lifecycle.StartupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        loop.close()
    return 0


def _deliver(reread: Callable[[], Config], path: str) -> int:
    """The delivery process: every subscription's loops, until SIGTERM (gateway.delivery)."""
    from gateway.processes import delivery

    loop = _event_loop()
    try:
        loop.run_until_complete(delivery.deliver(reread, path))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        loop.close()
    return 0


def migrate(store: Store) -> None:
    """Connect, apply pending migrations (under the engine's lock) and disconnect."""

    async def run() -> None:
        await store.open()
        await store.close()

    asyncio.run(run())


def _configured(args: argparse.Namespace) -> Config:
    """The config file with the command line's overrides."""
    return override(load(args.config), _overrides(args))


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line, by their place in the config file."""
    given = {"server.host": args.host, "server.port": args.port, "database": args.database}
    return {key: value for key, value in given.items() if value is not None}


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
    try:
        document = translation.decode(source, body, translation.sniff(body))
        output, warnings = translation.encode(
            document, target, args.format or target.formats[0], source=source
        )
    except translation.NotSpoken as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    except GatewayError as exc:
        detail = "; ".join(f"{k}: {v}" for k, v in exc.fields.items())
        print(f"error: {exc.message}{' (' + detail + ')' if detail else ''}", file=sys.stderr)
        return 1
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    sys.stdout.buffer.write(output if output.endswith(b"\n") else output + b"\n")
    return 0


def hash_secret(args: argparse.Namespace) -> int:
    """Hash a secret typed at a terminal, or the first line of stdin (`--stdin`, or no terminal)."""
    try:
        secret = _read_secret(args.stdin)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not secret:
        print("error: empty secret", file=sys.stderr)
        return 2
    print(hashes.make_hash(secret))
    return 0


def _read_secret(from_stdin: bool) -> str:
    if from_stdin or not sys.stdin.isatty():
        line = sys.stdin.buffer.readline().rstrip(b"\r\n")
        try:
            return line.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("the secret is not UTF-8 text") from None
    try:
        return getpass.getpass("Secret: ")
    except EOFError:  # Ctrl-D at the prompt
        return ""


class ClientFaults(logging.Filter):
    """aiohttp logs each request it cannot parse, or body it cannot inflate, at ERROR
    with a traceback: any client could fill the log so. Such a request is the client's
    fault and is answered 400; one line at INFO says enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        from aiohttp import web  # imported by then: only the server logs such records
        from aiohttp.http_exceptions import HttpProcessingError

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
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C once the event loop gave SIGINT back
        return 128 + signal.SIGINT


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    logs.setup(args.log_format, args.log_level)
    if args.command == "translate":
        return translate(args)
    if args.command == "hash-secret":
        return hash_secret(args)
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
