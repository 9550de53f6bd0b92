"""Who is calling: the generic mechanisms each dialect's unit declares, resolved to a tenant.

Basic `login:secret`, api keys in a header, and bearer JWTs (tokens this gateway
issued at a dialect's token endpoint, or ones an app signed with its own key). The
credentials come from the tenants' sections in the config, per dialect.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import math
import os
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt

import dialects
from dialects.errors import Forbidden, NotAuthenticated, TokenExpired
from dialects.unit import ApiKeyAuth, BasicAuth, BearerAuth, Credential, DialectUnit
from gateway.access import limits, passwords
from gateway.config import Config, hashes
from gateway.ledger.contract import Principal

ISSUER = "invoice-payments-gateway"
_LEEWAY = 30
_CACHE_SIZE = 4096
_EARLIEST = -62135596800  # 0001-01-01T00:00:00Z, the first instant a datetime can hold
_NAME_LENGTH = 64  # a longer claimed name is counted (and logged) by its digest


@dataclass(frozen=True)
class _Secret:
    stored: str
    principal: Principal


@dataclass(frozen=True)
class _App:
    tenant: str
    credential: Credential
    principal: Principal
    key: Any  # the app's ES256 public key, loaded once
    stored: str | None  # its secret as checked: plain, or a scrypt hash


class Authenticator:
    """Resolves each dialect's credentials to a Principal, or raises 401/403.

    Credentials come from the config only. Secrets stored as scrypt hashes are
    checked off the event loop; a credential once verified is remembered under a
    keyed digest of what was presented, so a known client pays scrypt once.
    """

    def __init__(
        self,
        config: Config,
        *,
        previous: Authenticator | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        # What tokens are issued and checked by (tests move it); kept over a reload.
        self._clock: Callable[[], datetime] = clock or (
            previous._clock if previous is not None else _utc_now
        )
        self._admin_token = config.admin_token
        self._token_secret = config.token_secret or os.urandom(32).hex()
        if previous is not None and config.token_secret is None and previous._random_secret:
            self._token_secret = previous._token_secret  # a reload keeps issued tokens valid
        self._random_secret: bool = config.token_secret is None
        self._token_lifetime = config.token_lifetime_seconds
        self._basic: dict[tuple[str, str], list[_Secret]] = {}
        self._api_keys: dict[str, list[_Secret]] = {}
        self._apps: dict[str, dict[str, _App]] = {}
        self._scopes: dict[tuple[str, str], str] = {}
        self._known: OrderedDict[bytes, Principal] = OrderedDict()
        self._credentials: dict[Principal, Credential] = {}
        # kept over a reload, so an api key's identity (its digest) and its failures are kept
        self._digest_key: bytes = previous._digest_key if previous is not None else os.urandom(32)
        for tenant, spec in config.tenants.items():
            for name, section in spec.sections().items():
                for credential in section.credentials():
                    self._add(tenant, dialects.unit(name), credential)
        self._decoys = self._one_cost_per_dialect()

    def _one_cost_per_dialect(self) -> dict[str, str]:
        """Make every secret check in a dialect cost the same; each dialect's decoy secret.

        A login or app that does not exist is checked against its dialect's decoy, so a
        wrong identity costs what a wrong secret does and timing does not tell which
        identities exist. The decoy has the form the dialect's secrets have: a scrypt hash
        where they are hashed, a plain secret where they are plain. A dialect mixing both
        has its plain secrets hashed here, once, so each of its checks costs one scrypt run.
        """
        decoys: dict[str, str] = {}
        for dialect in {dialect for dialect, _ in self._basic} | set(self._apps):
            if any(hashes.is_hash(secret) for secret in self._stored(dialect)):
                self._hash_plain(dialect)
                decoys[dialect] = hashes.make_hash(os.urandom(16).hex())
            else:
                decoys[dialect] = os.urandom(16).hex()
        return decoys

    def _stored(self, dialect: str) -> list[str]:
        stored = [s.stored for (d, _), found in self._basic.items() if d == dialect for s in found]
        apps = self._apps.get(dialect, {}).values()
        return stored + [a.credential.secret for a in apps if a.credential.secret is not None]

    def _hash_plain(self, dialect: str) -> None:
        for key, found in self._basic.items():
            if key[0] == dialect:
                self._basic[key] = [_Secret(_hashed(s.stored), s.principal) for s in found]
        for login, app in self._apps.get(dialect, {}).items():
            if app.credential.secret is not None and not hashes.is_hash(app.credential.secret):
                self._apps[dialect][login] = dataclasses.replace(
                    app, stored=_hashed(app.credential.secret)
                )

    def _add(self, tenant: str, unit: DialectUnit, credential: Credential) -> None:
        who = Principal(
            tenant, unit.name, credential.name, credential.email, app=credential.app,
            credential=credential.label, scopes=credential.scopes,
        )  # fmt: skip
        self._credentials[who] = credential
        scheme = unit.caller_auth
        if isinstance(scheme, BasicAuth) and credential.secret is not None:
            key = (unit.name, credential.login or "")
            self._basic.setdefault(key, []).append(_Secret(credential.secret, who))
        elif isinstance(scheme, ApiKeyAuth) and credential.secret is not None:
            self._api_keys.setdefault(unit.name, []).append(_Secret(credential.secret, who))
        elif isinstance(scheme, BearerAuth):
            pem = credential.public_key
            public = _load_public_key(pem) if pem else None
            app = _App(tenant, credential, who, public, credential.secret)
            self._apps.setdefault(unit.name, {})[credential.login or ""] = app
            self._scopes[(unit.name, credential.scope or "")] = tenant

    # --- shared --------------------------------------------------------------------

    def _digest(self, *parts: str) -> bytes:
        # surrogatepass: a claimed name (a login in JSON) may not be valid UTF-8
        text = "\x00".join(parts).encode("utf-8", "surrogatepass")
        # Keyed BLAKE2b is a MAC in itself, at half the CPU of HMAC-SHA256 on every request.
        return hashlib.blake2b(text, key=self._digest_key, digest_size=32).digest()

    def _claim(self, dialect: str, kind: str, name: object, *, secret: bool = False) -> None:
        """The request claims to be `name` (read, not checked): refused if out of failures.

        A secret, or a name that is not short text, is counted by a keyed digest, which
        is all the limits keep and log of it."""
        text, readable = (name, not secret) if isinstance(name, str) else (repr(name), False)
        if not readable or not text.isprintable() or len(text) > _NAME_LENGTH or text[:1] == "#":
            text = "#" + self._digest(dialect, kind, text).hex()[:16]
        limits.claim((dialect, kind, text))

    def _token_key(self, dialect: str) -> bytes:
        # HS256 keys are 32 bytes (RFC 7518 3.2): derived, so a short secret is no weak key
        # warning (an error under -W error) on every token issued or checked; one key per
        # dialect, so a token one dialect issued opens nothing in another.
        label = f"{dialect}-token\x00".encode()
        return hashlib.sha256(label + self._token_secret.encode()).digest()

    async def _first_match(
        self, cache_key: bytes, candidates: list[_Secret], presented: str
    ) -> Principal | None:
        known = self._known.get(cache_key)
        if known is not None:  # proven before: no wait, nothing spent
            self._known.move_to_end(cache_key)
            return known
        async with limits.unproven():
            for candidate in candidates:
                if await passwords.verify(candidate.stored, presented):
                    self._known[cache_key] = candidate.principal
                    if len(self._known) > _CACHE_SIZE:
                        self._known.popitem(last=False)
                    limits.proven()
                    return candidate.principal
        return None

    async def _check(
        self, dialect: str, kind: str, name: str, candidates: list[_Secret], presented: str
    ) -> Principal | None:
        """Who `name` is, if `presented` is one of its secrets; costing the same if no one.

        A secret proven before answers from memory; an identity that does not exist is
        checked against the dialect's decoy, as dearly as a wrong secret of one that does.
        """
        if not candidates:
            async with limits.unproven():
                await passwords.verify(self._decoys.get(dialect, ""), presented)
            return None
        return await self._first_match(self._digest(dialect, kind, name, presented), candidates,
                                       presented)  # fmt: skip

    # --- per scheme -------------------------------------------------------------------

    async def caller(
        self,
        unit: DialectUnit,
        headers: Mapping[str, str],
        params: Mapping[str, str],
        *,
        scoped: bool = True,
    ) -> Principal:
        """The caller of a request to `unit`'s routes, by the scheme the unit declares.

        `scoped` False: a bearer token need not be used on a scope it opens."""
        scheme = unit.caller_auth
        if isinstance(scheme, BasicAuth):
            return await self.basic(unit.name, headers.get("Authorization"))
        if isinstance(scheme, ApiKeyAuth):
            scope = headers.get(scheme.scope_header) if scheme.scope_header else None
            return await self.api_key(unit.name, scheme, headers.get(scheme.header), scope)
        where, name = scheme.scope
        named = (params if where == "path" else headers).get(name, "") if scoped else None
        return self.bearer(unit.name, scheme, headers.get("Authorization"), named)

    def credential(self, who: Principal) -> Credential:
        """The configured credential a principal presented."""
        return self._credentials[who]

    async def basic(self, dialect: str, header: str | None) -> Principal:
        """HTTP Basic `login:secret`."""
        encoded = _credentials(header, "basic")
        if encoded is None:
            raise NotAuthenticated("Authentication required")
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except ValueError as exc:  # not base64 (binascii.Error), not ASCII, not UTF-8
            raise NotAuthenticated("Malformed Basic credentials") from exc
        user, sep, secret = decoded.partition(":")
        if not sep or not user or not secret:
            raise NotAuthenticated("Invalid login")
        self._claim(dialect, "login", user)
        found = await self._check(
            dialect, "login", user, self._basic.get((dialect, user), []), secret
        )
        if found is None:
            raise NotAuthenticated("Invalid login")
        return found

    async def api_key(
        self, dialect: str, scheme: ApiKeyAuth, key: str | None, scope: str | None
    ) -> Principal:
        """A key in a header; a scope the key does not own is 403."""
        if not key:
            raise NotAuthenticated(scheme.missing)
        if not _is_text(key):
            raise NotAuthenticated(scheme.invalid)
        digest = self._digest(dialect, key)
        limits.claim((dialect, "key", "#" + digest.hex()[:16]))  # each key its own identity
        found = await self._first_match(digest, self._api_keys.get(dialect, []), key)
        if found is None:
            raise NotAuthenticated(scheme.invalid)
        if scope is not None and scope not in found.scopes:
            raise Forbidden(scheme.forbidden)
        return found

    async def issue(self, unit: DialectUnit, login: str, secret: str) -> tuple[str, Credential]:
        """A signed access token for an app's secret, at the unit's token endpoint."""
        endpoint, scheme = unit.token_endpoint, unit.caller_auth
        assert endpoint is not None and isinstance(scheme, BearerAuth)
        self._claim(unit.name, "app", login)
        if not _is_text(secret):
            raise NotAuthenticated(endpoint.invalid)
        app = self._apps.get(unit.name, {}).get(login)
        candidates = [_Secret(app.stored, app.principal)] if app and app.stored else []
        if await self._check(unit.name, "app", login, candidates, secret) is None or app is None:
            raise NotAuthenticated(endpoint.invalid)
        now = int(self._clock().timestamp())
        claims = {
            "iss": ISSUER,
            "sub": login,
            "aud": scheme.audience,
            **endpoint.claims(app.credential),
            "iat": now,
            "exp": now + self._token_lifetime,
        }
        token = jwt.encode(claims, self._token_key(unit.name), algorithm="HS256")
        return token, app.credential

    @property
    def token_lifetime(self) -> int:
        return self._token_lifetime

    def bearer(
        self, dialect: str, scheme: BearerAuth, header: str | None, scope: str | None
    ) -> Principal:
        """A bearer JWT: our own HS256 token, or one the app signed with ES256.

        The key and algorithm follow from the issuer we know, never from the token's
        header (`alg`, `kid`, `jku`, `x5u` are not consulted); the token opens only
        the scope it was issued for (`scope` None: the request names none).
        """
        token = _credentials(header, "bearer")
        if token is None or not _is_text(token):
            raise NotAuthenticated(scheme.invalid)
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            self._claim(dialect, "token", token, secret=True)
            raise NotAuthenticated(scheme.invalid) from exc
        issuer = unverified.get("iss")
        # the app the token names (before its signature is checked, which is cheap)
        self._claim(dialect, "app", unverified.get("sub") if issuer == ISSUER else issuer)
        app = self._verify(dialect, scheme, token, issuer)
        if scope is None:  # an endpoint naming no scope (Endpoint.scoped False)
            return app.principal
        if self._scopes.get((dialect, scope)) != app.tenant or scope != app.credential.scope:
            raise Forbidden(scheme.forbidden)
        return app.principal

    def _verify(self, dialect: str, scheme: BearerAuth, token: str, issuer: object) -> _App:
        # Times are checked by the gateway's clock (`_check_times`), not PyJWT's.
        options: jwt.types.Options = {
            "require": ["exp", "iat", "iss", "sub", "aud"],
            "verify_exp": False,
            "verify_iat": False,
            "verify_nbf": False,
        }
        apps = self._apps.get(dialect, {})
        try:
            if issuer == ISSUER:
                claims = jwt.decode(
                    token, self._token_key(dialect), algorithms=["HS256"],
                    audience=scheme.audience, issuer=ISSUER, options=options, leeway=_LEEWAY,
                )  # fmt: skip
                app = apps.get(claims["sub"])
                if app is None or claims.get(scheme.scope_claim) != app.credential.scope:
                    raise NotAuthenticated(scheme.invalid)
                self._check_times(scheme, claims)
                if not _lives_at_most(claims, self._token_lifetime, self._now()):
                    raise NotAuthenticated(f"{scheme.invalid}: claims not accepted")
                return app
            app = apps.get(issuer) if isinstance(issuer, str) else None
            if app is None or app.key is None or not isinstance(issuer, str):
                raise NotAuthenticated(scheme.invalid)
            claims = jwt.decode(
                token, app.key, algorithms=["ES256"], audience=scheme.audience, issuer=issuer,
                options=options, leeway=_LEEWAY,
            )  # fmt: skip
        except jwt.PyJWTError as exc:
            raise NotAuthenticated(f"{scheme.invalid}: {exc}") from exc
        self._check_times(scheme, claims)
        if (
            claims["sub"] != issuer
            or not _carries(claims, scheme.claims)
            or not _lives_at_most(claims, scheme.max_lifetime, self._now())
        ):
            raise NotAuthenticated(f"{scheme.invalid}: claims not accepted")
        return app

    def _now(self) -> float:
        return self._clock().timestamp()

    def _check_times(self, scheme: BearerAuth, claims: Mapping[str, Any]) -> None:
        """A token's `exp`, `iat` and `nbf` against the gateway's clock, with leeway; an
        expired token is refused in the words the dialect's clients refresh on."""
        now = self._now()
        for name in ("exp", "iat", "nbf"):
            if name in claims and not (_numeric_date(claims[name]) and math.isfinite(claims[name])):
                raise NotAuthenticated(f"{scheme.invalid}: {name} is not a number")
        if claims["exp"] <= now - _LEEWAY:
            moment = datetime.fromtimestamp(max(claims["exp"], _EARLIEST), UTC)
            expired = (
                scheme.expired(moment)
                if scheme.expired
                else f"{scheme.invalid}: Signature has expired"
            )
            raise TokenExpired(expired)
        if claims["iat"] > now + _LEEWAY or claims.get("nbf", now) > now + _LEEWAY:
            raise NotAuthenticated(f"{scheme.invalid}: The token is not yet valid")

    def admin(self, header: str | None) -> None:
        limits.claim(("admin", "admin", "token"))
        presented = _credentials(header, "bearer") or ""
        presented = presented if _is_text(presented) else ""
        expected = hashlib.sha256(self._admin_token.encode()).digest()
        if not presented or not hmac.compare_digest(
            hashlib.sha256(presented.encode()).digest(), expected
        ):
            raise NotAuthenticated("Admin token required")


def _hashed(secret: str) -> str:
    return secret if hashes.is_hash(secret) else hashes.make_hash(secret)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _carries(claims: Mapping[str, Any], required: Mapping[str, Any]) -> bool:
    """Whether `claims` hold `required`: equal values, or for a mapping, its items at least."""
    for name, expected in required.items():
        found = claims.get(name)
        if isinstance(expected, Mapping):
            if not isinstance(found, dict) or any(found.get(k) != v for k, v in expected.items()):
                return False
        elif found != expected:
            return False
    return True


def _credentials(header: str | None, scheme: str) -> str | None:
    """What follows an Authorization scheme, matched case-insensitively (RFC 9110 11.1)."""
    name, _, value = (header or "").strip().partition(" ")
    if name.lower() != scheme or not value.strip():
        return None
    return value.strip()


def _is_text(value: str) -> bool:
    """Whether a presented secret is text: non-empty and encodable as UTF-8.

    aiohttp keeps header bytes that are not UTF-8 as lone surrogates (and JSON may
    spell them, "\\ud800"); no configured secret holds one, and they cannot be encoded
    to be compared or hashed, so such a credential is simply wrong (401, not a 500).
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return bool(value)


def _lives_at_most(claims: Mapping[str, Any], lifetime: int, now: float) -> bool:
    """Whether a token expires within `lifetime` seconds of its issue, and of `now`.

    A token signed with a known key but an `exp` years away (the signing key leaked
    once, or an app's clock ran wild) would otherwise open its scope for that long."""
    exp, iat = claims.get("exp"), claims.get("iat")
    if not _numeric_date(exp) or not _numeric_date(iat):
        return False
    assert isinstance(exp, int | float) and isinstance(iat, int | float)
    return exp - iat <= lifetime and exp - now <= lifetime + _LEEWAY


def _numeric_date(value: object) -> bool:
    """A JSON number, as RFC 7519 requires (PyJWT also lets numeric strings through)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _load_public_key(pem: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    key = load_pem_public_key(pem.encode())
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("an app public_key must be a P-256 (ES256) key")
    return key
