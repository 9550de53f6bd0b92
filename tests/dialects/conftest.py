"""Codec fixtures: documents that carry the moment they were written use one fixed moment."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from dialects import quickbooks, xero

WRITTEN = datetime(2026, 11, 20, 9, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fixed_clock() -> Iterator[datetime]:
    token = xero.NOW.set(lambda: WRITTEN)
    answered = quickbooks.NOW.set(lambda: WRITTEN)
    yield WRITTEN
    quickbooks.NOW.reset(answered)
    xero.NOW.reset(token)
