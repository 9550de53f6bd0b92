"""The gateway's configuration: a YAML file with `${ENV}` references, checked by pydantic."""

from __future__ import annotations

import base64
import binascii
import os
import re
import uuid
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, Union
from urllib.parse import urlsplit

import yaml
from pydantic import (
    Field,
    IPvAnyNetwork,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

import dialects
from dialects.registry import RegistryError, unknown
from dialects.unit import BackendConfig, Section, Strict
from gateway.config import hashes

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(ValueError):
    """The configuration cannot be used; the message says where and why."""


class RateLimit(Strict):
    """Requests one credential may make: `burst` at once, `per_second` sustained.

    With `server.rate_limits: database` (the default) every gateway process on one
    database takes from one budget; with `process`, each counts alone, and N processes
    (gateways times `--workers`) admit up to N times these figures.
    """

    per_second: float = Field(gt=0)
    burst: int = Field(gt=0)


class Breaker(Strict):
    """Open after `failures` failed calls in a row; try again after `reset_seconds`."""

    failures: int = Field(default=5, gt=0)
    reset_seconds: float = Field(default=30.0, gt=0)


class Upstream(BackendConfig):
    """A backend the tenant's payments live in, spoken to in its own dialect.

    The dialect's own backend model (its credentials) is mixed in per dialect;
    `backend:` in a tenant is the union of those, told apart by `dialect`.
    """

    url: str = Field(description="base URL, http or https")
    format: Literal["xml", "json"] | None = None
    connect_timeout: float = Field(default=2.0, gt=0)
    timeout: float = Field(default=10.0, gt=0)
    retries: int = Field(default=2, ge=0, le=10)
    retry_budget: float = Field(default=0.2, ge=0, le=1)
    breaker: Breaker = Breaker()
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    pool_size: int = Field(default=64, gt=0)
    strict: bool = False

    @model_validator(mode="after")
    def _complete(self) -> Upstream:
        if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", self.url):
            raise ValueError(f"url {mask_url(self.url)!r} must be an http(s) URL with no query")
        formats = dialects.get(self.dialect).formats
        if self.format is not None and self.format not in formats:
            spoken = " and ".join(f.upper() for f in formats)
            raise ValueError(f"a {self.dialect} backend speaks {spoken} only")
        return self


class Account(Strict):
    """A deposit account payments may go into: its code, and its id where it has one."""

    code: str = Field(min_length=1, max_length=10)
    id: str | None = Field(default=None, description="a UUID")
    name: str = ""

    @field_validator("id")
    @classmethod
    def _uuid(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(uuid.UUID(value))
        except ValueError as exc:
            raise ValueError("an account id must be a UUID") from exc


# The event types a webhook may ask for (gateway.store.outbox.TYPES, which sits above config).
EVENT_TYPES = ("payment.created", "payment.updated", "payment.deleted", "invoice.updated")
# Seconds after each failed attempt before the next; after the last, the delivery fails.
DEFAULT_RETRY_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)
_SECRET_PREFIX = "whsec_"


def webhook_key(secret: str) -> bytes:
    """The HMAC key a Standard Webhooks secret (`whsec_` + base64 of 24-64 bytes) stands for."""
    if not secret.startswith(_SECRET_PREFIX):
        raise ValueError("a webhook secret must start with whsec_")
    try:
        key = base64.b64decode(secret[len(_SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a webhook secret must be whsec_ followed by base64") from exc
    if not 24 <= len(key) <= 64:
        raise ValueError(f"a webhook secret must encode 24 to 64 bytes, not {len(key)}")
    return key


def _check_schedule(schedule: tuple[float, ...]) -> None:
    if not schedule or not 1 <= len(schedule) <= 50:
        raise ValueError("retry_schedule: give 1 to 50 delays")
    if any(not 0 < delay <= 7 * 86_400 for delay in schedule):
        raise ValueError("retry_schedule: each delay must be over 0 and at most 7 days")


class Relay(Upstream):
    """A backend a ledger-mode tenant's payments are forwarded to (store and forward):
    `backend:`'s keys, and the schedule failed forwards are retried on (a webhook's)."""

    retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE

    @model_validator(mode="after")
    def _schedule(self) -> Relay:
        _check_schedule(self.retry_schedule)
        return self


class Webhook(Strict):
    """A subscription: where the gateway sends a tenant's events, signed (Standard Webhooks)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="unique within the tenant")
    url: str = Field(description="http(s) URL the events are POSTed to")
    # One secret, or several while rotating: every listed secret signs each delivery.
    secret: str | tuple[str, ...]
    events: tuple[str, ...] = EVENT_TYPES
    format: str = Field(default="standard", description="standard, or a dialect's name")
    timeout: float = Field(default=10.0, gt=0, le=300)
    retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE

    @model_validator(mode="after")
    def _complete(self) -> Webhook:
        if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s#]*)?", self.url):
            raise ValueError(f"url {mask_url(self.url)!r} must be an http(s) URL")
        for secret in self.secrets:
            webhook_key(secret)
        if not self.secrets:
            raise ValueError("secret: give at least one")
        for kind in self.events:
            if kind not in EVENT_TYPES:
                raise ValueError(f"events: {kind!r} is not one of {', '.join(EVENT_TYPES)}")
        if not self.events:
            raise ValueError("events: give at least one type (or leave it out: all four)")
        if len(set(self.events)) != len(self.events):
            raise ValueError("events: a type is listed twice")
        if self.format != "standard" and self.format not in dialects.units():
            raise ValueError(
                f"format: {self.format!r} is neither standard nor a dialect"
                f" ({unknown(self.format, dialects.units())})"
            )
        _check_schedule(self.retry_schedule)
        return self

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.secret,) if isinstance(self.secret, str) else self.secret

    def keys(self) -> list[bytes]:
        """The HMAC keys every delivery is signed with, in the order listed."""
        return [webhook_key(secret) for secret in self.secrets]


class Tenant(Strict):
    """A tenant: one optional section per registered dialect, its limit and its backend.

    The sections are added per registered dialect (`tenant_model`); read one with
    `section(name)`.
    """

    rate_limit: RateLimit | None = None
    backend: Upstream | None = Field(default=None, description="none: the embedded ledger")
    accounts: tuple[Account, ...] = Field(default=(), description="deposit accounts")
    default_account: str | None = Field(default=None, description="code of the default account")
    webhooks: tuple[Webhook, ...] = Field(default=(), description="where events are sent")
    relay: Relay | None = Field(default=None, description="a backend payments are forwarded to")

    @model_validator(mode="after")
    def _default_is_listed(self) -> Tenant:
        if self.backend is not None and self.relay is not None:
            raise ValueError("backend and relay exclude each other: proxy, or relay, not both")
        names = [hook.name for hook in self.webhooks]
        if len(set(names)) != len(names):
            raise ValueError("webhooks: two share a name")
        codes = [account.code for account in self.accounts]
        if len(set(codes)) != len(codes):
            raise ValueError("two accounts share a code")
        if self.default_account is not None and codes and self.default_account not in codes:
            raise ValueError(f"default_account {self.default_account!r} is not in accounts")
        return self

    def section(self, dialect: str) -> Any:
        """The tenant's section for `dialect`, or None if it has none."""
        return getattr(self, dialect, None)

    def sections(self) -> dict[str, Section]:
        """Every section the tenant configures, by dialect."""
        found = {name: self.section(name) for name in dialects.units()}
        return {name: section for name, section in found.items() if section is not None}


class Server(Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    access_log: bool = True
    # Slow clients: a request's headers must arrive within this many seconds of the
    # connection opening (or of the previous answer on a kept-alive connection, so it is
    # also the idle timeout), and its body within as many seconds of the handler asking.
    read_timeout_seconds: float = Field(default=10.0, gt=0, le=3600)
    # Slow readers: answers may wait unread in the process up to write_buffer_bytes per
    # connection (beyond what the kernel buffers); past it the connection stops being
    # served, and if its client still reads nothing for write_timeout_seconds, it is closed.
    write_buffer_bytes: int = Field(default=64 * 1024, ge=1024, le=64 * 1024 * 1024)
    write_timeout_seconds: float = Field(default=10.0, gt=0, le=3600)
    # Structure an XML or JSON document may have: request bodies and backend answers.
    xml_max_depth: int = Field(default=32, ge=2, le=256)
    xml_max_elements: int = Field(default=10_000, gt=0)
    xml_max_attributes: int = Field(default=16, ge=0)
    json_max_depth: int = Field(default=32, ge=2, le=256)
    # Failed authentications one identity (a login, an app, an api key) may make from one
    # client address (a token bucket); past it, that identity is refused from there as
    # each dialect refuses too many requests; others are not. null: no limit.
    # Counted over every process on the database (see rate_limits below).
    auth_failures: RateLimit | None = RateLimit(per_second=1, burst=20)
    # Failed authentications one client address may make over all identities; past it,
    # its checks of secrets not yet proven wait their turn, at this pace (refused with
    # 429 past read_timeout_seconds). Known-good credentials never wait. null: no limit.
    auth_address_failures: RateLimit | None = RateLimit(per_second=2, burst=100)
    # Checks of secrets not yet proven the whole process (with rate_limits: database,
    # every process on the database) may make, over all addresses
    # (each may cost a scrypt run): a spray from many addresses is bounded by this, not
    # only each address by the one above. Past it, such checks are refused with 429 at
    # once; a right secret gives its token back, and known-good credentials never wait.
    # null: no limit.
    auth_global_failures: RateLimit | None = RateLimit(per_second=10, burst=100)
    # Work anyone may ask for without credentials (POST /gateway/v1/translate): what one
    # client address may ask (a token bucket; past it 429 with Retry-After; null: no
    # limit), the largest body it may send (413 past it), and the threads the work runs
    # on, off the event loop (requests beyond 16 waiting per thread are refused with 429).
    translate_rate: RateLimit | None = RateLimit(per_second=2, burst=20)
    translate_max_bytes: int = Field(default=64 * 1024, gt=0)
    translate_threads: int = Field(default=2, gt=0, le=64)
    # On SIGTERM: stop listening, let requests in flight finish within this many seconds.
    drain_seconds: float = Field(default=30.0, ge=0, le=3600)
    # --workers: a worker holding more open connections than another leaves a new
    # connection this many seconds for the other to accept, then takes it itself (so a
    # busy or stuck worker strands no client). 0: whichever worker wakes first takes it.
    accept_defer_seconds: float = Field(default=0.01, ge=0, le=60)
    # Proxies (addresses or networks) whose X-Forwarded-For names the client address the
    # failed-login limit counts by; from any other peer the header is ignored.
    trusted_proxies: tuple[IPvAnyNetwork, ...] = ()
    # Where tenants' rate_limit and the three auth_*failures budgets are counted:
    # `database`, one budget per key for every gateway process on the database, each
    # process taking `rate_limit_batch` tokens at a time (at most a quarter of a burst)
    # so that requests pay no round trip; `process`, in each process's memory alone.
    rate_limits: Literal["database", "process"] = "database"
    rate_limit_batch: int = Field(default=8, ge=1, le=1000)


class Idempotency(Strict):
    """How long an Idempotency-Key is remembered, and how a crashed holder's is freed."""

    # A key and its stored answer are kept this long after its first request.
    ttl_seconds: float = Field(default=86_400, gt=0)
    # A request holds its key this long; past it, a retry may take over the key of a
    # request that stored nothing (its process died). Longer than any request takes.
    lease_seconds: float = Field(default=30, gt=0, le=3600)
    # A delivery loop is woken by its own process's commits; this slower poll finds the
    # work other processes' commits made (another worker's replay, another gateway's events).
    poll_seconds: float = Field(default=5, gt=0, le=3600)
    # Where the delivery and relay loops run: `inline`, in every serving process, or
    # `process`, in one process of their own that the supervisor starts beside the
    # serving workers (which then only write events), at `delivery_nice` (os.nice) so
    # that serving requests comes first. Both need a restart to change.
    deliveries: Literal["inline", "process"] = "inline"
    delivery_nice: int = Field(default=10, ge=0, le=19)
    # Expired keys are deleted in the background, `purge_batch` at a time.
    purge_interval_seconds: float = Field(default=60, gt=0)
    purge_batch: int = Field(default=500, gt=0, le=100_000)


class Events(Strict):
    """The outbox: every ledger change's events, kept for the change feed and deliveries."""

    # Events older than this are deleted in the background, a small batch at a time; a
    # feed cursor older than what is kept is answered 410 with the oldest one kept.
    retention_seconds: float = Field(default=7 * 86_400, gt=0)
    # A process delivering an event holds it this long; past it, another may take it over.
    lease_seconds: float = Field(default=30, gt=0, le=3600)
    # A delivery loop is woken by its own process's commits; this slower poll finds the
    # work other processes' commits made (another worker's replay, another gateway's events).
    poll_seconds: float = Field(default=5, gt=0, le=3600)
    # Where the delivery and relay loops run: `inline`, in every serving process, or
    # `process`, in one process of their own that the supervisor starts beside the
    # serving workers (which then only write events), at `delivery_nice` (os.nice) so
    # that serving requests comes first. Both need a restart to change.
    deliveries: Literal["inline", "process"] = "inline"
    delivery_nice: int = Field(default=10, ge=0, le=19)


class Metrics(Strict):
    """`GET /metrics`: behind the admin token unless public (for a scraper on a private network).

    `enabled: false` stops counting requests (for measuring what counting costs).
    """

    public: bool = False
    enabled: bool = True


# The published values config.yaml falls back to: refused outside demo mode.
SHIPPED_SECRETS = {
    "admin_token": "demo-admin-token",
    "token_secret": "demo-token-secret-not-for-production",
}


class Config(Strict):
    server: Server = Server()
    idempotency: Idempotency = Idempotency()
    events: Events = Events()
    metrics: Metrics = Metrics()
    # sqlite:///relative/path.db, sqlite:////absolute/path.db, or
    # postgresql://user:password@host:5432/dbname for a database many gateways share.
    database: str = "sqlite:///data/gateway.db"
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    # PostgreSQL connections each gateway process keeps at most: N processes (all
    # gateways times --workers) open up to N x this many, which must stay below the
    # server's max_connections (100 by default).
    database_pool_size: int = Field(default=10, gt=0, le=1000)
    # PostgreSQL: how long a request waits for a free connection of the pool before it
    # is answered 503 with Retry-After; and the prepared statements each connection keeps
    # (0 behind PgBouncer in transaction mode before its 1.21, which cannot keep them).
    database_acquire_timeout_seconds: float = Field(default=5.0, gt=0, le=600)
    database_statement_cache_size: int = Field(default=100, ge=0, le=100_000)
    admin_token: str
    token_secret: str | None = Field(default=None, description="signs the access tokens issued")
    token_lifetime_seconds: int = Field(default=3600, gt=0, le=86400)
    demo: bool = False
    tenants: dict[str, Tenant]

    @model_validator(mode="after")
    def _no_shipped_secret(self) -> Config:
        if not self.demo:
            for name, shipped in SHIPPED_SECRETS.items():
                if getattr(self, name) == shipped:
                    raise ValueError(
                        f"{name}: the value config.yaml ships, which anyone may read, is refused"
                        " outside demo mode:"
                        " set your own (or demo: true, for a gateway on your own machine)"
                    )
        return self

    @field_validator("tenants")
    @classmethod
    def _tenant_names(cls, tenants: dict[str, Tenant]) -> dict[str, Tenant]:
        for name in tenants:
            if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
                raise ValueError(f"tenant name {name!r} must be 1-64 of A-Z a-z 0-9 _ . -")
        return tenants


def mask_url(url: str) -> str:
    """A URL fit for a log line or an error: any password replaced by `***`."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url.split("://", 1)[0] + "://***" if "@" in url else url
    if not password:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def expand(value: Any, environ: Mapping[str, str] | None = None, where: str = "") -> Any:
    """Replace `${VAR}` and `${VAR:-default}` in every string of a loaded YAML tree.

    An unset variable without a default is a ConfigError naming its key path (`where`
    is the path of `value` itself, dotted)."""
    env = os.environ if environ is None else environ
    if isinstance(value, dict):
        return {key: expand(item, env, _join(where, key)) for key, item in value.items()}
    if isinstance(value, list):
        return [expand(item, env, _join(where, index)) for index, item in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env and (env[name] or default is None):
            return env[name]
        if default is not None:
            return default
        raise ConfigError(f"{where + ': ' if where else ''}${{{name}}} is not set")

    return _REFERENCE.sub(substitute, value)


def _join(where: str, key: object) -> str:
    return f"{where}.{key}" if where else str(key)


def load(path: str | Path, environ: dict[str, str] | None = None) -> Config:
    """Read, expand and validate a configuration file."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {_yaml_problem(exc)}") from exc
    return parse(raw, environ, source=str(path))


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What is wrong and where, on one line (PyYAML's message quotes the line, on many)."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"line {mark.line + 1}, column {mark.column + 1}: {exc.problem}"
    return " ".join(str(exc).split())


def parse(raw: Any, environ: dict[str, str] | None = None, source: str = "config") -> Config:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source} must be a mapping")
    try:
        expanded = expand(raw, environ)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return _validate(expanded, source)


def override(config: Config, values: Mapping[str, Any], source: str = "command line") -> Config:
    """`config` with dotted keys (`server.port`) replaced, checked as the file was."""
    raw = config.model_dump()
    for dotted, value in values.items():
        *parents, name = dotted.split(".")
        node = raw
        for parent in parents:
            node = node[parent]
        node[name] = value
    return _validate(raw, source)


def _validate(raw: dict[str, Any], source: str) -> Config:
    try:
        model = config_model()
    except RegistryError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    try:
        config = model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(_problem(error) for error in exc.errors())
        raise ConfigError(f"{source}: {problems}") from exc
    problem = _hash_problem(config) or _shared_route(config)
    if problem:
        raise ConfigError(f"{source}: {problem}")
    return config


def _hash_problem(config: Config) -> str | None:
    """A scrypt hash in a tenant's sections that no secret could ever match."""
    for tenant, spec in config.tenants.items():
        for dialect, section in spec.sections().items():
            found = _hashes(section.model_dump(), f"tenants.{tenant}.{dialect}")
            for where, stored in found:
                problem = hashes.hash_problem(stored)
                if problem:
                    return f"{where}: the scrypt hash is damaged: {problem}"
    return None


def _hashes(node: Any, where: str) -> list[tuple[str, str]]:
    if isinstance(node, str):
        return [(where, node)] if hashes.is_hash(node) else []
    if isinstance(node, dict):
        items: Any = node.items()
    elif isinstance(node, list | tuple):
        items = enumerate(node)
    else:
        return []
    return [found for key, child in items for found in _hashes(child, f"{where}.{key}")]


def _shared_route(config: Config) -> str | None:
    """Two tenants naming one identifier that routes a caller (a login, an app, a key):
    whichever came later would take the other's callers over.

    Values compare as written: plain to plain, and a scrypt hash to the same hash text.
    A key one tenant stores plain and another hashed, or two hashes of one key made with
    different salts, cannot be compared without the key (and are not)."""
    seen: dict[tuple[str, str, str], tuple[str, str]] = {}
    for tenant, spec in config.tenants.items():
        for dialect, section in spec.sections().items():
            for rule, path, value in section.routing_values():
                where = f"tenants.{tenant}.{dialect}.{path}"
                owner, first = seen.setdefault((dialect, rule, value), (tenant, where))
                if owner != tenant:
                    return (
                        f"{where} is the same as {first}: tenants {owner} and {tenant}"
                        " cannot share a value that routes a caller to its tenant"
                    )
    return None


def _problem(error: Any) -> str:
    """One validation problem; an unknown tenant section or backend dialect names the closest."""
    where = [str(p) for p in error["loc"]]
    if not where:  # the whole file's check: its message names the keys
        return str(error["msg"]).removeprefix("Value error, ")
    text = f"{'.'.join(where)}: {error['msg']}"
    known = dialects.units()
    if error["type"] == "extra_forbidden" and len(where) == 3 and where[0] == "tenants":
        text += f" ({unknown(where[2], known)})"
    if error["type"] == "union_tag_invalid":
        text += f" ({unknown(str(error['ctx']['tag']), known)})"
    return text


@cache
def config_model() -> type[Config]:
    """Config with a section per registered dialect and a backend union over them."""
    units = dialects.units()
    backends = tuple(
        type(f"{unit.backend.__name__}Upstream", (unit.backend, Upstream), {"__module__": __name__})
        for unit in units.values()
    )
    backend: Any = Annotated[Union[backends], Field(discriminator="dialect")]  # noqa: UP007
    relays = tuple(
        type(f"{unit.backend.__name__}Relay", (unit.backend, Relay), {"__module__": __name__})
        for unit in units.values()
    )
    relay: Any = Annotated[Union[relays], Field(discriminator="dialect")]  # noqa: UP007
    fields: dict[str, Any] = {name: (unit.section | None, None) for name, unit in units.items()}
    fields["backend"] = (backend | None, Field(default=None))
    fields["relay"] = (relay | None, Field(default=None))
    tenant = create_model("Tenant", __base__=Tenant, **fields)
    return create_model("Config", __base__=Config, tenants=(dict[str, tenant], ...))


def backend_config(raw: Mapping[str, Any]) -> Upstream:
    """A `backend:` section checked alone, as the tenant's union reads it."""
    found = config_model().model_validate(
        {"admin_token": "-", "tenants": {"t": {"backend": dict(raw)}}}
    )
    backend = found.tenants["t"].backend
    assert backend is not None
    return backend
