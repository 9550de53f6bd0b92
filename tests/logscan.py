"""Every log line the test run's gateways print, searched for the secrets they were given."""

from __future__ import annotations

import logging
from pathlib import Path

from gateway.observability.logs import JsonFormatter

# The demo config's secrets (README), and those the tests configure and present.
SECRETS = (
    "demo-harvest-password", "demo-fastbill-key", "demo-invoiless-key", "demo-app-secret",
    "demo-admin-token", "demo-token-secret-not-for-production",
    *(f"{tenant}-{kind}" for tenant in ("acme", "globex")
      for kind in ("harvest", "fastbill", "invoiless", "app-secret")),
    "test-admin-token", "test-token-secret", "process-admin-token", "process-token-secret",
    "proxy-token-secret", "backend-token-secret", "backend-admin-token",
    "database-password-never-logged",
)  # fmt: skip

# Output of gateway processes run to completion (command-line runs), kept for the search.
OUTPUTS: list[str] = []


class Collector(logging.Handler):
    """Keeps every line the in-process gateways log, formatted as JSON."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def leaks(lines: list[str], files: list[Path]) -> list[str]:
    """Each (secret, line) where a secret shows, in `lines` or in the log `files`."""
    texts = list(lines) + OUTPUTS
    texts += [f.read_text(encoding="utf-8", errors="replace") for f in files if f.exists()]
    found = []
    for text in texts:
        for line in text.splitlines():
            found += [f"{secret}: {line[:300]}" for secret in SECRETS if secret in line]
    return found
