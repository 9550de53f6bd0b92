"""One attempt at a delivery (a webhook's POST, a relay's call to its backend), and the
state it leaves the delivery in: the one retry rule every subscription follows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from gateway.store.deliveries import DELIVERED, FAILED, PENDING, Due, Settle


class Schedule(Protocol):
    """What a subscription retries on: seconds after each failed attempt."""

    @property
    def retry_schedule(self) -> tuple[float, ...]: ...


@dataclass(frozen=True)
class Outcome:
    """One attempt: the receiver's status (None: no answer) and what went wrong.

    `refused`: an answer no retry will change (failed at once); `backend_id`: the id a
    relayed create was given; `unknown`: the attempt went out and was never answered."""

    status: int | None
    error: str | None
    retry_after: float | None = None
    refused: bool = False
    backend_id: str | None = None
    unknown: bool = False

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def settled(channel: Schedule, due: Due, outcome: Outcome, now: datetime) -> Settle:
    """The delivery's state after `outcome`, and when it is tried next."""
    attempts = due.attempts + 1
    if outcome.delivered:
        return Settle(
            DELIVERED, attempts, now, outcome.status, None, success=True,
            backend_id=outcome.backend_id,
        )  # fmt: skip
    if outcome.status == 410:  # Gone: the subscription stops until an operator enables it
        # Not an attempt spent: the delivery waits, its schedule whole, for `enable`.
        return Settle(PENDING, due.attempts, now, 410, outcome.error, success=False, disable=True)
    schedule = channel.retry_schedule
    if outcome.refused or attempts > len(schedule):
        return Settle(
            FAILED, attempts, now, outcome.status, outcome.error, success=False,
            unknown=outcome.unknown,
        )  # fmt: skip
    delay = max(schedule[attempts - 1], outcome.retry_after or 0.0)
    next_at = now + timedelta(seconds=delay)
    return Settle(
        PENDING, attempts, next_at, outcome.status, outcome.error, success=False,
        unknown=outcome.unknown,
    )  # fmt: skip


def outcome_name(settle: Settle) -> str:
    """The outcome an attempt is counted under in the metrics."""
    if settle.disable:
        return "disabled"
    return {DELIVERED: "delivered", FAILED: "failed"}.get(settle.state, "retry")
