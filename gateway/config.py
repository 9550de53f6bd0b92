"""The gateway's configuration: a YAML file with `${ENV}` references, checked by pydantic."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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


class Tenant(Strict):
    harvest: HarvestAuth = HarvestAuth()
    fastbill: FastBillAuth = FastBillAuth()
    invoiless: InvoilessAuth = InvoilessAuth()
    urlkey: UrlKeyAuth | None = None
    rate_limit: RateLimit | None = None


class Server(Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    access_log: bool = True


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
