"""CPU time of a few per-request paths, in-process: steadier than a server A/B on a
busy machine, for costs of a microsecond or two.

    python -m benchmarks.hot_paths [--checkout ../older-checkout]

`--checkout`: the gateway and dialects of another source tree (its `gateway/` and
`dialects/` imported instead of this one's). Each figure is the least of several runs
of `time.process_time` (CPU time of this process alone), per call:

- a known-good api key (Invoiless) and Basic login (Harvest), answered from memory;
- one text access line formatted;
- a page of 50 Harvest XML rows as SQLite reads them (moments and amounts as text);
- what a write works out for the invoice's facts (`Change.after` and `facts`).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import logging
import sys
import time
import timeit
from collections.abc import Callable, Coroutine
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any


def _best(call: Callable[[], object], number: int) -> float:
    timer = timeit.Timer(call, timer=time.process_time)
    return min(timer.repeat(number=number, repeat=7)) / number * 1e6


def _done(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """A coroutine run to its end without an event loop (it must not wait on anything)."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("waited: not answered from memory")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", type=Path, help="another source tree's gateway")
    args = parser.parse_args()
    if args.checkout:
        sys.path.insert(0, str(args.checkout.resolve()))
    import dialects
    from benchmarks.suite import gateway_config
    from dialects import DIALECTS, listing
    from dialects.model import Invoice, Payment
    from gateway.access.auth import Authenticator
    from gateway.config import parse
    from gateway.observability.logs import TextFormatter
    from gateway.store.base import Change

    print(f"gateway from {Path(dialects.__file__).resolve().parents[1].name}")
    auth = Authenticator(parse(gateway_config()))
    invoiless, harvest = dialects.unit("invoiless"), dialects.unit("harvest")
    key = {"api-key": "bench-key"}
    basic = {"Authorization": "Basic " + base64.b64encode(b"bench@example.com:bench").decode()}
    loop = asyncio.new_event_loop()
    loop.run_until_complete(auth.caller(invoiless, key, {}))  # proven once: then from memory
    loop.run_until_complete(auth.caller(harvest, basic, {}))
    print(
        f"api key, known      {_best(lambda: _done(auth.caller(invoiless, key, {})), 20000):6.2f} us"
    )
    print(
        f"Basic login, known  {_best(lambda: _done(auth.caller(harvest, basic, {})), 20000):6.2f} us"
    )

    fields = {
        "request_id": "3f2a9c1e0b7d4e6f", "method": "GET",
        "path": "/invoices/INV0000000000000000000001/payments", "status": 200,
        "duration_ms": 1.234, "tenant": "bench", "dialect": "harvest",
        "operation": "list_payments", "backend_status": None, "backend_ms": None,
    }  # fmt: skip
    record = logging.LogRecord("gateway", logging.INFO, __file__, 1, "request", (), None)
    record.fields = fields  # as `logs.event` makes it
    formatter = TextFormatter()
    print(f"text access line    {_best(lambda: formatter.format(record), 20000):6.2f} us")

    now = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    sent = [
        Payment(
            id=1000 + n, invoice_id=7, amount=Decimal("12.50"), paid_at=now,
            notes="Paid by bank transfer", reference=f"REF-{n:06d}", recorded_by="Bench User",
            recorded_by_email="bench@example.com", client_app="bench", created_at=now,
            updated_at=now,
        )
        for n in range(50)
    ]  # fmt: skip
    codec = DIALECTS["harvest"]
    rows = [
        tuple(
            v.isoformat() if isinstance(v, datetime) else str(v) if isinstance(v, Decimal) else v
            for v in row
        )
        for row in listing.rows_of(sent, codec.row_columns)
    ]
    xml = codec.codecs["xml"]
    assert xml.encode_rows(rows) == xml.encode_payments(sent)
    print(f"50 Harvest XML rows {_best(lambda: xml.encode_rows(rows), 2000):6.2f} us")

    invoice = Invoice(
        id=1, tenant="bench", number="INV-1", currency="EUR", total=Decimal(100),
        issued_on=date(2026, 1, 1), due_on=date(2026, 2, 1), created_at=now,
    )  # fmt: skip
    change = Change(upsert=None, delete=None, marked_paid=False)
    if hasattr(change, "after"):
        facts = _best(lambda: change.after(invoice, None).facts(), 20000)
        print(f"a write's facts     {facts:6.2f} us")


if __name__ == "__main__":
    main()
