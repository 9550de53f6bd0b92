"""Fixtures: the ledger-mode backend process a relay forwards to (as proxy mode's tests
start it, once per module) and its admin API."""

from ..proxy.conftest import backend, backend_process

__all__ = ["backend", "backend_process"]
