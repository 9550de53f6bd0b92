"""The gateway's configuration: a YAML file with `${ENV}` references, checked by pydantic."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(ValueError):
    """The configuration cannot be used; the message says where and why."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HarvestUser(Strict):
    email: str
    password: str = Field(description="scrypt hash (`python -m gateway hash-secret`) or plain")
    name: str = ""


class FastBillUser(Strict):
    email: str
    api_key: str
    name: str = ""


class InvoilessKey(Strict):
    key: str
    name: str = "api-key"
    scopes: tuple[str, ...] = ()


class UrlKeyApp(Strict):
    app_id: str
    secret: str | None = None
    name: str = ""
    public_key: str | None = Field(default=None, description="PEM of the app's ES256 key")


class HarvestAuth(Strict):
    users: tuple[HarvestUser, ...] = ()


class FastBillAuth(Strict):
    users: tuple[FastBillUser, ...] = ()


class InvoilessAuth(Strict):
    keys: tuple[InvoilessKey, ...] = ()


class UrlKeyAuth(Strict):
    business: str
    apps: tuple[UrlKeyApp, ...] = ()


class RateLimit(Strict):
    """Requests one credential may make: `burst` at once, `per_second` sustained."""

    per_second: float = Field(gt=0)
    burst: int = Field(gt=0)


class Breaker(Strict):
    """Open after `failures` failed calls in a row; try again after `reset_seconds`."""

    failures: int = Field(default=5, gt=0)
    reset_seconds: float = Field(default=30.0, gt=0)


# What each backend dialect needs to authenticate the gateway.
_BACKEND_CREDENTIALS = {
    "harvest": ("user", "password"),
    "fastbill": ("user", "password"),
    "invoiless": ("api_key",),
    "urlkey": ("business", "app_id"),
}


class Upstream(Strict):
    """A backend the tenant's payments live in, spoken to in its own dialect."""

    dialect: Literal["harvest", "fastbill", "invoiless", "urlkey"]
    url: str = Field(description="base URL, http or https")
    format: Literal["xml", "json"] | None = None
    user: str | None = None
    password: str | None = None
    api_key: str | None = None
    scope_id: str | None = None
    business: str | None = None
    app_id: str | None = None
    app_secret: str | None = None
    private_key: str | None = Field(default=None, description="PEM of an ES256 key")
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
            raise ValueError(f"url {self.url!r} must be an http(s) URL with no query")
        missing = [k for k in _BACKEND_CREDENTIALS[self.dialect] if not getattr(self, k)]
        if self.dialect in ("harvest", "fastbill") and not self.password:
            missing.append("password")
        if self.dialect == "urlkey" and not (self.app_secret or self.private_key):
            missing.append("app_secret or private_key")
        if missing:
            raise ValueError(f"a {self.dialect} backend needs {', '.join(dict.fromkeys(missing))}")
        if self.private_key is not None:
            _check_es256_private_key(self.private_key)
        if self.format == "xml" and self.dialect in ("invoiless", "urlkey"):
            raise ValueError(f"a {self.dialect} backend speaks JSON only")
        return self


def _check_es256_private_key(pem: str) -> None:
    """Refuse at start-up a key that could only fail on the first request."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError("private_key is not a readable PEM private key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("private_key must be a P-256 (ES256) key")


class Tenant(Strict):
    harvest: HarvestAuth = HarvestAuth()
    fastbill: FastBillAuth = FastBillAuth()
    invoiless: InvoilessAuth = InvoilessAuth()
    urlkey: UrlKeyAuth | None = None
    rate_limit: RateLimit | None = None
    backend: Upstream | None = Field(default=None, description="none: the embedded ledger")


class Server(Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    access_log: bool = True
    # Slow clients: a request's headers must arrive within this many seconds of the
    # connection opening (or of the previous answer on a kept-alive connection, so it is
    # also the idle timeout), and its body within as many seconds of the handler asking.
    read_timeout_seconds: float = Field(default=10.0, gt=0, le=3600)
    # Structure an XML or JSON document may have: request bodies and backend answers.
    xml_max_depth: int = Field(default=32, ge=2, le=256)
    xml_max_elements: int = Field(default=10_000, gt=0)
    xml_max_attributes: int = Field(default=16, ge=0)
    json_max_depth: int = Field(default=32, ge=2, le=256)
    # Failed authentications one client address may make (a token bucket); past it, its
    # requests are refused as each dialect refuses too many requests. null: no limit.
    auth_failures: RateLimit | None = RateLimit(per_second=1, burst=20)


class Config(Strict):
    server: Server = Server()
    database: str = "sqlite:///data/gateway.db"
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    admin_token: str
    token_secret: str | None = Field(default=None, description="signs urlKey access tokens")
    token_lifetime_seconds: int = Field(default=3600, gt=0, le=86400)
    demo: bool = False
    tenants: dict[str, Tenant]

    @field_validator("tenants")
    @classmethod
    def _tenant_names(cls, tenants: dict[str, Tenant]) -> dict[str, Tenant]:
        for name in tenants:
            if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
                raise ValueError(f"tenant name {name!r} must be 1-64 of A-Z a-z 0-9 _ . -")
        return tenants


def expand(value: Any, environ: Mapping[str, str] | None = None) -> Any:
    """Replace `${VAR}` and `${VAR:-default}` in every string of a loaded YAML tree."""
    env = os.environ if environ is None else environ
    if isinstance(value, dict):
        return {key: expand(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [expand(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env and (env[name] or default is None):
            return env[name]
        if default is not None:
            return default
        raise ConfigError(f"environment variable {name} is not set")

    return _REFERENCE.sub(substitute, value)


def load(path: str | Path, environ: dict[str, str] | None = None) -> Config:
    """Read, expand and validate a configuration file."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    return parse(raw, environ, source=str(path))


def parse(raw: Any, environ: dict[str, str] | None = None, source: str = "config") -> Config:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source} must be a mapping")
    try:
        return Config.model_validate(expand(raw, environ))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise ConfigError(f"{source}: {problems}") from exc
