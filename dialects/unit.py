"""A dialect as one unit: its codec, routes, caller auth, backend auth and config, as data.

The gateway interprets these declarations with generic mechanisms (Basic with scrypt
hashes, api keys, bearer JWTs, a token endpoint, backend clients); nothing here
imports a web framework, so a dialect package depends on `dialects` alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict, model_validator

from .base import Decoded, Dialect, Format, Reply
from .errors import GatewayError, NotFound
from .model import Facts, Payment, PaymentQuery

# --- routes ------------------------------------------------------------------------------


class Op(Enum):
    LIST = "list"
    GET = "get"
    CREATE = "create"
    REPLACE = "replace"
    PATCH = "patch"
    DELETE = "delete"
    # A list over the tenant's payments that the codec's query selects and pages.
    SEARCH = "search"
    # One or many payments in one body (`Dialect.decode_list`), each created in turn.
    CREATE_MANY = "create_many"
    # A POST whose body marks the payment deleted (`Dialect.read_removal`).
    REMOVE = "remove"
    # A POST of a whole payment (a group of allocations) to its collection: what its body
    # and query ask (create, update, delete or void) is read by `DialectUnit.groups`.
    WRITE = "write"


@dataclass(frozen=True)
class Route:
    """One native endpoint: its method, path, operation, and how success is answered.

    Path parameters the gateway knows: `{invoice_id}`, `{payment_id}`, and any the
    caller's auth or the backend's config fills (`BearerAuth.scope`,
    `BackendConfig.path_values`).
    """

    method: str
    path: str
    op: Op
    status: int = 200
    location: str | None = None
    # A list the vendor pages: its (limit, offset) query parameters. Without one, or
    # without them in the query, a list is answered whole.
    paging: tuple[str, str] | None = None
    # The query parameter a search statement comes in; on a POST the text body stands
    # for it (a statement long enough to be sent as a body, say).
    query_body: str | None = None

    @property
    def shape(self) -> str:
        return shape(self.path)


def shape(path: str) -> str:
    """A path with its parameters unnamed: two endpoints of one shape collide."""
    return re.sub(r"\{[^}]*\}", "{}", path)


# --- how a caller authenticates ------------------------------------------------------------


@dataclass(frozen=True)
class Credential:
    """One caller credential a tenant's section configures, and who it makes the caller.

    `login` is what the caller presents beside the secret (a Basic user name, an app
    id); `secret` is plain or a scrypt hash; `public_key` a PEM ES256 key the caller
    signs its own tokens with; `scope` what the credential opens (a business), if any.
    """

    secret: str | None
    name: str
    label: str
    login: str | None = None
    email: str | None = None
    app: str | None = None
    scopes: tuple[str, ...] = ()
    public_key: str | None = None
    scope: str | None = None
    # A long-lived grant the credential trades for access tokens at the token endpoint
    # beside its secret (a refresh token), if it has one.
    grant: str | None = None


@dataclass(frozen=True)
class BasicAuth:
    """HTTP Basic `login:secret` against the section's credentials."""


@dataclass(frozen=True)
class ApiKeyAuth:
    """A secret key in a header; an optional second header names a scope the key must own."""

    header: str
    scope_header: str | None = None
    missing: str = "Missing api-key header"
    invalid: str = "Invalid api-key"
    forbidden: str = "This api-key has no access to that scope"


@dataclass(frozen=True)
class BearerAuth:
    """A bearer JWT: one the gateway issued (HS256), or one an app signed with its key (ES256).

    `scope` is where the request names what it opens (a path parameter or a header);
    it must equal the credential's `scope`. Self-signed tokens must carry `claims`
    (a mapping value: those items at least) and live at most `max_lifetime` seconds.
    """

    audience: str
    scope: tuple[Literal["path", "header"], str]
    scope_claim: str
    claims: Mapping[str, Any] = field(default_factory=dict)
    max_lifetime: int = 86400
    invalid: str = "Invalid authentication"
    forbidden: str = "This token does not open that scope"
    # The message for a token past its expiry, from that moment (None: a generic one).
    expired: Callable[[datetime], str] | None = None


CallerAuth = BasicAuth | ApiKeyAuth | BearerAuth


@dataclass(frozen=True)
class TokenEndpoint:
    """An endpoint the dialect serves that trades an app's secret for an access token.

    `read` takes the request body and headers and returns (app login, secret), raising
    the dialect's errors; `claims` are added to the token issued for a credential;
    `answer` renders (status, media type, body) for the token and its credential.
    """

    path: str
    read: Callable[[bytes, Mapping[str, str]], tuple[str, str]]
    claims: Callable[[Credential], dict[str, Any]]
    answer: Callable[[str, Credential, int], tuple[int, str, bytes]]
    body_format: Literal["json", "form"] = "json"
    invalid: str = "Invalid login"
    # The endpoint's own error answers (OAuth 2.0's, say); None, or None for an error:
    # the dialect's `encode_error`.
    error: Callable[[GatewayError], Reply | None] | None = None
    # After the secret is proven: a check of the rest of the request against the
    # credential (a refresh token it must hold), raising the dialect's refusal.
    check: Callable[[bytes, Credential], None] | None = None


@dataclass(frozen=True)
class Document:
    """A public document the dialect serves without authentication (an OAuth discovery
    document, say): `render(base_url)` gives (status, media type, body)."""

    method: str
    path: str
    render: Callable[[str], tuple[int, str, bytes]]


class NoRoute(NotFound):
    """No operation is served at the path: a dialect may answer it otherwise than a
    missing object (QuickBooks' Unsupported Operation)."""


# --- whole payments: groups of allocations ------------------------------------------------


@dataclass(frozen=True)
class GroupWrite:
    """What an Op.WRITE request asks: `action` on the group `group_id` (None: a create),
    expecting its `version`; `request` holds the fields and, for a create or an update
    that sends them, its allocations; `replace` False changes only what it sends."""

    action: Literal["create", "update", "delete", "void"]
    group_id: int | None
    version: int | None
    request: Decoded
    replace: bool = True


class Grouping(Protocol):
    """A dialect whose ids name whole payments (groups of allocations): how its writes are
    read, and its groups, deletions and query results written."""

    def read_write(self, fmt: Format, body: bytes, query: Mapping[str, str]) -> GroupWrite:
        """The write a POST to the collection asks for."""

    def encode_group(
        self, fmt: Format, payments: Sequence[Payment], warnings: list[str], facts: Facts
    ) -> bytes:
        """One whole payment from its allocations."""

    def encode_deleted(self, fmt: Format, group_id: int) -> bytes:
        """The answer to a deleted group."""

    def delete_request(
        self, fmt: Format, group_id: str, version: int | None
    ) -> tuple[dict[str, str], bytes]:
        """The query and body of a request deleting a group (proxy mode), at the version
        the backend last showed."""

    def read_query(self, statement: str) -> tuple[PaymentQuery, Any]:
        """The store's search for a query statement, and the dialect's plan of the rest."""

    def encode_result(
        self,
        fmt: Format,
        payments: Sequence[Payment],
        plan: Any,
        warnings: list[str],
        facts: Facts,
    ) -> bytes:
        """A query's answer from the allocations the search found and the plan."""


@dataclass(frozen=True)
class EndpointCall:
    """What an endpoint's `render` answers from: the caller's tenant, the credential it
    presented, the tenant's section of the unit (None if it has none), and the format
    the caller accepts."""

    tenant: str
    credential: Credential
    section: Section | None
    fmt: Format


@dataclass(frozen=True)
class Endpoint:
    """An endpoint beyond the payment operations, for an authenticated caller.

    `answer(tenant, credential)` renders (status, media type, body) for the tenant and
    the credential the caller presented (a list of the caller's connections, say);
    `render(call)`, given instead, renders from an `EndpointCall` (the tenant's section
    and the accepted format too). `scoped` False lets a bearer token in without the
    request naming its scope.
    """

    method: str
    path: str
    answer: Callable[[str, Credential], tuple[int, str, bytes]] | None = None
    scoped: bool = True
    render: Callable[[EndpointCall], tuple[int, str, bytes]] | None = None

    def __post_init__(self) -> None:
        if (self.answer is None) == (self.render is None):
            raise ValueError(f"{self.path}: an endpoint takes one of answer and render")

    def respond(self, call: EndpointCall) -> tuple[int, str, bytes]:
        if self.render is not None:
            return self.render(call)
        assert self.answer is not None
        return self.answer(call.tenant, call.credential)


# --- how the gateway authenticates to a backend ------------------------------------------


@dataclass(frozen=True)
class StaticHeaders:
    """Credentials sent as the same headers on every call (Basic, an api key)."""

    headers: Mapping[str, str]


@dataclass(frozen=True)
class TokenGrant:
    """A token fetched from the backend: POST `body` to `path`, read the answer with `read`.

    `read(status, body)` returns the token and its expiry (epoch seconds, None: unknown)
    or raises UpstreamError. `calls` are headers sent with the token on every call (a
    tenant header, say).
    """

    path: str
    body: bytes
    headers: Mapping[str, str]
    read: Callable[[int, bytes], tuple[str, float | None]]
    calls: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SelfSignedToken:
    """A token the gateway signs itself with the backend config's private key (ES256)."""

    private_key: str
    claims: Callable[[int, int], dict[str, Any]]
    lifetime: int = 3600


ClientAuth = StaticHeaders | TokenGrant | SelfSignedToken


# --- configuration -------------------------------------------------------------------------


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Section(Strict):
    """A tenant's section for one dialect: the credentials its callers present.

    `routing` lists the section's values that route a caller to its tenant (a login,
    an app id, an api key, the scope a request names), as dotted paths where `*`
    stands for each item of a list: `("users.*.email",)`. No two tenants may share
    one of them in a dialect (the gateway refuses such a config).
    """

    routing: ClassVar[tuple[str, ...]] = ()

    def credentials(self) -> tuple[Credential, ...]:
        raise NotImplementedError

    def routing_values(self) -> list[tuple[str, str, str]]:
        """Each (`routing` path, dotted path of the value, value) in this section."""
        return [
            (rule, where, value)
            for rule in self.routing
            for where, value in _walk(self, rule.split("."), "")
        ]


def _walk(node: Any, steps: list[str], where: str) -> list[tuple[str, str]]:
    if node is None:
        return []
    if not steps:
        return [(where, str(node))]
    step, rest = steps[0], steps[1:]
    if step == "*":
        return [item for i, child in enumerate(node) for item in _walk(child, rest, f"{where}.{i}")]
    return _walk(getattr(node, step), rest, f"{where}.{step}" if where else step)


class BackendConfig(Strict):
    """What a backend of one dialect needs to authenticate the gateway.

    Subclasses set `dialect` to a Literal of their name (the union's discriminator),
    list in `needs` the fields that must be set (`a or b` for either), and turn them
    into a ClientAuth. The gateway adds its own fields (url, timeouts ...) to these.
    """

    dialect: str
    needs: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _needs(self) -> BackendConfig:
        missing = [
            need
            for need in self.needs
            if not any(getattr(self, name.strip()) for name in need.split(" or "))
        ]
        if missing:
            raise ValueError(f"a {self.dialect} backend needs {', '.join(missing)}")
        return self

    def client_auth(self) -> ClientAuth:
        raise NotImplementedError

    def path_values(self) -> dict[str, str]:
        """Values of the path parameters the dialect's routes need beyond the ids."""
        return {}

    def create_defaults(self) -> dict[str, Any]:
        """Canonical values a create sends where the caller gave none: what the backend
        requires that a caller's dialect may have no place for."""
        return {}


# --- the unit ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DialectUnit:
    """Everything the gateway needs to serve a dialect, and to speak it to a backend.

    `endpoints` are further authenticated endpoints (not payment operations) it serves.
    `prefixes` are the paths the dialect answers errors under before any route
    matched; `suffixes` takes Rails' `.xml` / `.json` on paths; `vendor` lists the
    names the gateway core must never say; `testing` names the module holding the
    dialect's test client and samples; `idempotency_header` is the request header the
    vendor's API takes an idempotency key in, if it has one (proxy mode sends the caller's
    key there; relay sends one derived from each forwarded event, and without one looks
    for a payment at the backend before sending it again).
    """

    codec: Dialect
    routes: tuple[Route, ...]
    prefixes: tuple[str, ...]
    caller_auth: CallerAuth
    section: type[Section]
    backend: type[BackendConfig]
    token_endpoint: TokenEndpoint | None = None
    suffixes: bool = False
    endpoints: tuple[Endpoint, ...] = ()
    vendor: tuple[str, ...] = ()
    testing: str | None = None
    idempotency_header: str | None = None
    # The query parameter a caller may send its idempotency key in instead (the key is
    # then the gateway's Idempotency-Key), if the vendor's API has one.
    idempotency_query: str | None = None
    # Public documents served without authentication.
    documents: tuple[Document, ...] = ()
    # Where ids name whole payments: how the grouped operations read and answer.
    groups: Grouping | None = None

    @property
    def name(self) -> str:
        return self.codec.name

    def route(self, op: Op) -> Route | None:
        """The first route serving `op`, or None if the dialect has none."""
        return next((r for r in self.routes if r.op is op), None)

    def paths(self) -> tuple[str, ...]:
        """Every path the dialect serves: its routes, endpoints and token endpoint."""
        extra = [self.token_endpoint.path] if self.token_endpoint else []
        extra += [endpoint.path for endpoint in self.endpoints]
        extra += [document.path for document in self.documents]
        return tuple(dict.fromkeys([r.path for r in self.routes] + extra))
