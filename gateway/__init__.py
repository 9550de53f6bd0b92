"""The invoice payments gateway: an aiohttp server over the dialect codecs."""

__all__ = ["create_app"]


def __getattr__(name: str) -> object:
    """`create_app` imported when first asked for (`gateway.app.create_app`): `python -m
    gateway` imports this package before its command line takes SIGINT over, so it
    imports nothing itself."""
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
