"""The invoice payments gateway: an aiohttp server over the dialect codecs.

Its wings, each importing only those below it (the `lint-imports` contract in
pyproject.toml); the dialects sit below them all:

    processes      the OS process, --workers, reload
    serving        the aiohttp app, routes, admin API, OpenAPI, playground
    events         webhook deliveries from the outbox, signed, retried, leased
    proxy          proxy mode: a backend in another dialect, its id map, HTTP client
    access         authentication, rate and failed-login limits, secret checks
    ledger         ledger rules, idempotency keys, accounts, search, translation
    store          SQLite and PostgreSQL stores
    observability  logs, metrics, trace
    config         config.yaml's model and stored-secret formats
"""

__all__ = ["create_app"]


def __getattr__(name: str) -> object:
    """`create_app` imported when first asked for (`gateway.serving.app.create_app`): `python -m
    gateway` imports this package before its command line takes SIGINT over, so it
    imports nothing itself."""
    if name == "create_app":
        from gateway.serving.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
