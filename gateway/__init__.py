"""The invoice payments gateway: an aiohttp server over the dialect codecs."""

from .app import create_app

__all__ = ["create_app"]
