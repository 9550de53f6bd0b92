"""Talking to one backend: pooled session, timeouts, bounded retries, breaker, auth."""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from functools import partial

import jwt
from prometheus_client import Counter, Histogram

from dialects.errors import (
    GatewayError,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from dialects.parsing import ascii_number
from dialects.unit import SelfSignedToken, StaticHeaders, TokenGrant
from gateway.config import Upstream as UpstreamConfig
from gateway.observability import trace
from gateway.observability.logs import event
from gateway.observability.metrics import BACKEND_CALLS, BACKEND_SECONDS
from gateway.proxy import httpclient

_BACKOFF_BASE = 0.05
_TOO_LARGE = partial(UpstreamError, "The backend's answer is too large")
_BACKOFF_CAP = 1.0
_RETRYABLE_STATUSES = (502, 503, 504)
_TOKEN_MARGIN = 60
_UNKNOWN_EXPIRY = 300
# The longest wait a backend's Retry-After may pass on to a caller. A backend is trusted
# with payments, not with sending every caller away for a day: past a minute (twice the
# breaker's default reset, and the window of the per-minute limits backends keep) the
# gateway's own breaker, not the backend's word, decides when to try again.
MAX_RETRY_AFTER = 60


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass
class Breaker:
    """Closed, open after `threshold` failures in a row, half-open after `reset` seconds."""

    threshold: int
    reset: float
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    opened_at: float | None = None
    trial: bool = False
    # Told each new state ("closed", "half-open", "open") as the breaker moves.
    watch: Callable[[str], None] | None = None

    def check(self) -> None:
        if self.opened_at is None:
            return
        waited = self.clock() - self.opened_at
        if waited < self.reset or self.trial:
            retry = max(1, int(self.reset - waited + 0.999))
            raise UpstreamUnavailable(
                "The backend is unavailable (circuit open)", retry_after=retry
            )
        self.trial = True  # half-open: this one call decides
        self._moved("open")

    def success(self) -> None:
        before = self.state
        self.failures, self.opened_at, self.trial = 0, None, False
        self._moved(before)

    def failure(self) -> None:
        before = self.state
        self.failures += 1
        if self.trial or self.failures >= self.threshold:
            self.opened_at, self.trial = self.clock(), False
        self._moved(before)

    def _moved(self, before: str) -> None:
        if self.watch is not None and self.state != before:
            self.watch(self.state)

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half-open" if self.trial else "open"


@dataclass
class RetryBudget:
    """Retries may add at most `ratio` to the traffic: each call earns, each retry spends."""

    ratio: float
    cap: float = 10.0
    tokens: float = field(default=10.0)

    def earn(self) -> None:
        self.tokens = min(self.cap, self.tokens + self.ratio)

    def spend(self) -> bool:
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class _Failure(Exception):
    """One failed attempt, with the error to raise if no retry follows."""

    def __init__(self, error: GatewayError, *, sent: bool, reason: str) -> None:
        super().__init__(error.message)
        self.error = error
        self.sent = sent
        self.reason = reason  # the outcome the metrics and the log name it by


class UpstreamClient:
    """One backend, one pool of kept-alive connections; the URL comes from the config only.

    `send` retries with full-jitter backoff when the request was never sent (the
    connection failed), or when it is idempotent and failed in transit or met a
    502/503/504, within a retry budget; every outcome feeds the breaker. The whole
    call, its attempts, back-offs and token fetch included, keeps one deadline of
    `timeout` seconds: an attempt gets what is left of it, and no retry starts that
    could not begin before it (so an attempt that timed out is never retried).
    """

    def __init__(self, config: UpstreamConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.base = config.url.rstrip("/")
        self.breaker = Breaker(config.breaker.failures, config.breaker.reset_seconds, clock)
        self.budget = RetryBudget(config.retry_budget)
        self.auth = config.client_auth()
        self._pool: httpclient.Pool | None = None
        self._calls: dict[str, Counter] = {}
        self._seconds: Histogram
        self._token: tuple[str, float] | None = None
        self._token_lock = asyncio.Lock()

    async def open(self) -> None:
        config = self.config
        self._pool = httpclient.Pool(
            size=config.pool_size, connect_timeout=config.connect_timeout,
            timeout=config.timeout, max_body=config.max_body_bytes,
        )  # fmt: skip

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    async def send(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        idempotent: bool,
    ) -> Answer:
        self.breaker.check()
        self.budget.earn()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.timeout
        attempt = 0
        renewed = False
        while True:
            started = time.perf_counter()
            try:
                answer = await self._attempt(method, path, body, headers, params, deadline)
            except _Failure as failure:
                self._record(started, failure.reason, None)
                self._log("backend_failed", reason=failure.reason, attempt=attempt + 1)
                pause = self._retry_pause(attempt, idempotent or not failure.sent, deadline)
                if pause is not None:
                    attempt += 1
                    self._log("backend_retry", reason=failure.reason, attempt=attempt + 1)
                    await asyncio.sleep(pause)
                    continue
                self.breaker.failure()
                # A request that was sent keeps its failure as the cause: see `unanswered`.
                raise failure.error from (failure if failure.sent else None)
            self._record(started, f"{answer.status // 100}xx", answer.status)
            if answer.status == 401 and self.renews and not renewed:
                # The backend no longer takes our token (it restarted with a new signing
                # key, say) and did nothing with the request: once more, with a new token.
                renewed = True
                continue
            if (
                answer.status in _RETRYABLE_STATUSES
                and (retry_after(answer.headers) or 0) <= _BACKOFF_CAP
                and (pause := self._retry_pause(attempt, idempotent, deadline)) is not None
            ):
                # A backend asking for more than a moment's rest gets it: the caller is
                # answered 503 with the backend's Retry-After instead of a retry now.
                attempt += 1
                self._log("backend_retry", reason=f"status {answer.status}", attempt=attempt + 1)
                await asyncio.sleep(pause)
                continue
            if answer.status >= 500:
                self.breaker.failure()
            else:
                self.breaker.success()
            return answer

    def _record(self, started: float, outcome: str, status: int | None) -> None:
        """One attempt in the metrics and in the request's access log line."""
        seconds = time.perf_counter() - started
        calls = self._calls.get(outcome)
        if calls is None:  # labelled children made on first use, as the metrics expect
            calls = self._calls[outcome] = BACKEND_CALLS.labels(self.config.dialect, outcome)
            self._seconds = BACKEND_SECONDS.labels(self.config.dialect)
        calls.inc()
        self._seconds.observe(seconds)
        trace.note(backend_status=status, backend_ms=round(seconds * 1000, 3))

    def _log(self, name: str, **fields: object) -> None:
        event(name, logging.WARNING, backend=self.config.dialect, **fields)

    @property
    def renews(self) -> bool:
        """Whether the gateway's credential is a token it can renew."""
        return not isinstance(self.auth, StaticHeaders)

    def _retry_pause(self, attempt: int, allowed: bool, deadline: float) -> float | None:
        """The full-jitter back-off before another attempt, or None for no retry: not
        allowed, none left, no time left before the call's deadline, or no budget."""
        if not allowed or attempt >= self.config.retries:
            return None
        pause = random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** (attempt + 1)))
        if asyncio.get_running_loop().time() + pause >= deadline:
            return None
        return pause if self.budget.spend() else None

    async def _attempt(
        self,
        method: str,
        path: str,
        body: bytes | None,
        headers: Mapping[str, str] | None,
        params: Mapping[str, str] | None,
        deadline: float,
    ) -> Answer:
        assert self._pool is not None, "upstream session not open"
        if isinstance(self.auth, StaticHeaders):
            auth = self.auth.headers  # no token to fetch: no await
        else:
            try:
                auth = await self._token_headers(deadline)
            except GatewayError as exc:
                # No token, so the request itself was never sent: a failed attempt like any
                # other (retried, then counted by the breaker), never one that escapes them.
                raise _Failure(exc, sent=False, reason="no_token") from exc
        all_headers = {**headers, **auth} if headers else dict(auth)
        current = trace.CURRENT.get()
        if current is not None:
            all_headers[trace.HEADER] = current.request_id
        try:
            response = await self._pool.request(
                method, self.base, path, all_headers, body, params, deadline=deadline
            )
        except httpclient.ConnectFailed as exc:
            if exc.timed_out:  # no connection within connect_timeout: never sent
                unreached = UpstreamTimeout("The backend could not be reached in time")
                raise _Failure(unreached, sent=False, reason="connect_timeout") from exc
            refused = UpstreamUnavailable("The backend refused the connection", retry_after=1)
            raise _Failure(refused, sent=False, reason="refused") from exc
        except httpclient.TimedOut as exc:
            late = UpstreamTimeout("The backend did not answer in time")
            raise _Failure(late, sent=True, reason="timeout") from exc
        except httpclient.TooLarge as exc:
            raise _Failure(_TOO_LARGE(), sent=True, reason="oversize") from exc
        except httpclient.Corrupt as exc:
            unreadable = UpstreamError(f"The backend sent an unreadable answer: {exc}")
            raise _Failure(unreadable, sent=True, reason="corrupt") from exc
        except (httpclient.Broken, OSError) as exc:
            broken = UpstreamError("The connection to the backend failed")
            raise _Failure(broken, sent=True, reason="broken") from exc
        if response.status == 401 and self._token is not None:
            self._token = None  # `send` renews it and tries once more
        return Answer(response.status, response.headers, response.body)

    # --- the gateway's own credentials at the backend ---------------------------------

    async def _token_headers(self, deadline: float) -> Mapping[str, str]:
        """The headers of a token-based scheme (static headers need no await: see `_attempt`)."""
        extra = self.auth.calls if isinstance(self.auth, TokenGrant) else {}
        return {**extra, "Authorization": f"Bearer {await self._bearer(deadline)}"}

    async def _bearer(self, deadline: float) -> str:
        """A token, cached and renewed a minute before it expires; fetched within the
        deadline of the call that needs it."""
        if self._token is not None and self._token[1] - _TOKEN_MARGIN > time.time():
            return self._token[0]
        async with self._token_lock:
            if self._token is None or self._token[1] - _TOKEN_MARGIN <= time.time():
                self._token = await self._new_token(deadline)
            return self._token[0]

    async def _new_token(self, deadline: float) -> tuple[str, float]:
        auth = self.auth
        if isinstance(auth, SelfSignedToken):
            now = int(time.time())
            expires = now + auth.lifetime
            claims = auth.claims(now, expires)
            return jwt.encode(claims, auth.private_key, algorithm="ES256"), float(expires)
        assert isinstance(auth, TokenGrant) and self._pool is not None
        try:
            response = await self._pool.request(
                "POST", self.base, auth.path, dict(auth.headers), auth.body, deadline=deadline
            )
        except httpclient.TimedOut as exc:
            raise UpstreamTimeout("The backend did not answer in time") from exc
        except (httpclient.ConnectFailed, httpclient.Broken, OSError) as exc:
            raise UpstreamUnavailable("The backend refused the connection", retry_after=1) from exc
        except httpclient.TooLarge:
            raise _TOO_LARGE() from None
        except httpclient.Corrupt as exc:
            raise UpstreamError(f"The backend sent an unreadable answer: {exc}") from exc
        status, data = response.status, response.body
        token, until = auth.read(status, data)
        return token, until if until is not None else time.time() + _UNKNOWN_EXPIRY


def unanswered(error: BaseException) -> bool:
    """Whether `send` failed after the request went out: the backend may have acted on it."""
    return isinstance(error.__cause__, _Failure) and error.__cause__.sent


def retry_after(headers: Mapping[str, str], now: Callable[[], float] = time.time) -> int | None:
    """A backend's Retry-After in whole seconds, at most MAX_RETRY_AFTER; None if unreadable.

    Both forms count: delay-seconds (ASCII digits only) and an HTTP-date, as the
    seconds from `now` to it (0 once it has passed).
    """
    value = headers.get("Retry-After", "").strip()
    seconds: float | None = ascii_number(value)
    if seconds is None and value.isascii():
        try:
            when = parsedate_to_datetime(value)
        except (ValueError, TypeError, OverflowError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = max(0.0, math.ceil(when.timestamp() - now()))
    return None if seconds is None else int(min(seconds, MAX_RETRY_AFTER))
