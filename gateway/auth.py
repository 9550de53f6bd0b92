"""Who is calling: Basic auth, api-key and urlKey bearer JWTs, resolved to a tenant."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from dialects.errors import BadRequest, Forbidden, NotAuthenticated

from . import passwords
from .backend import Principal
from .config import Config, UrlKeyApp

ISSUER = "invoice-payments-gateway"
AUDIENCE = "serana"
SELF_SIGNED_MAX_LIFETIME = 86400
_LEEWAY = 30
_CACHE_SIZE = 4096


@dataclass(frozen=True)
class _Secret:
    stored: str
    principal: Principal


@dataclass(frozen=True)
class _App:
    tenant: str
    business: str
    config: UrlKeyApp
    key: Any  # the app's ES256 public key, loaded once


class Authenticator:
    """Resolves each dialect's credentials to a Principal, or raises 401/403.

    Credentials come from the config only. Secrets stored as scrypt hashes are
    checked off the event loop; a credential once verified is remembered under a
    keyed digest of what was presented, so a known client pays scrypt once.
    """

    def __init__(self, config: Config) -> None:
        self._admin_token = config.admin_token
        # HS256 keys are 32 bytes (RFC 7518 3.2): derived, so a short secret is no weak key
        # warning (an error under -W error) on every token issued or checked.
        secret = config.token_secret or os.urandom(32).hex()
        self._token_key = hashlib.sha256(b"urlkey-token\x00" + secret.encode()).digest()
        self._token_lifetime = config.token_lifetime_seconds
        self._basic: dict[tuple[str, str], list[_Secret]] = {}
        self._api_keys: list[_Secret] = []
        self._apps: dict[str, _App] = {}
        self._businesses: dict[str, str] = {}
        self._known: OrderedDict[bytes, Principal] = OrderedDict()
        self._digest_key = os.urandom(32)
        for tenant, spec in config.tenants.items():
            for user in spec.harvest.users:
                who = Principal(
                    tenant, "harvest", user.name or user.email, user.email, credential=user.email
                )
                self._basic.setdefault(("harvest", user.email), []).append(
                    _Secret(user.password, who)
                )
            for fb in spec.fastbill.users:
                who = Principal(
                    tenant, "fastbill", fb.name or fb.email, fb.email, credential=fb.email
                )
                self._basic.setdefault(("fastbill", fb.email), []).append(_Secret(fb.api_key, who))
            for index, key in enumerate(spec.invoiless.keys):
                who = Principal(
                    tenant, "invoiless", key.name, scopes=key.scopes, credential=f"key-{index}"
                )
                self._api_keys.append(_Secret(key.key, who))
            if spec.urlkey is not None:
                self._businesses[spec.urlkey.business] = tenant
                for app in spec.urlkey.apps:
                    public = _load_public_key(app.public_key) if app.public_key else None
                    self._apps[app.app_id] = _App(tenant, spec.urlkey.business, app, public)
        # Checked in place of the secret of a user or app that does not exist, so a wrong
        # email costs the same scrypt run as a wrong password: timing does not tell which
        # users exist. Only made when some secret is hashed (else nothing costs anything).
        stored = [s.stored for found in self._basic.values() for s in found]
        stored += [a.config.secret for a in self._apps.values() if a.config.secret]
        hashed = any(passwords.is_hash(secret) for secret in stored)
        self._decoy = passwords.make_hash(os.urandom(16).hex()) if hashed else None

    # --- shared --------------------------------------------------------------------

    def _digest(self, *parts: str) -> bytes:
        return hmac.digest(self._digest_key, "\x00".join(parts).encode(), "sha256")

    async def _first_match(
        self, cache_key: bytes, candidates: list[_Secret], presented: str
    ) -> Principal | None:
        known = self._known.get(cache_key)
        if known is not None:
            self._known.move_to_end(cache_key)
            return known
        for candidate in candidates:
            if await passwords.verify(candidate.stored, presented):
                self._known[cache_key] = candidate.principal
                if len(self._known) > _CACHE_SIZE:
                    self._known.popitem(last=False)
                return candidate.principal
        return None

    async def _decoy_check(self, presented: str) -> None:
        if self._decoy is not None:
            await passwords.verify(self._decoy, presented)

    # --- per dialect -----------------------------------------------------------------

    async def basic(self, dialect: str, header: str | None) -> Principal:
        """HTTP Basic `email:secret`, as Harvest and FastBill took it."""
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
        candidates = self._basic.get((dialect, user), [])
        if not candidates:
            await self._decoy_check(secret)
            raise NotAuthenticated("Invalid login")
        found = await self._first_match(self._digest(dialect, user, secret), candidates, secret)
        if found is None:
            raise NotAuthenticated("Invalid login")
        return found

    async def api_key(self, key: str | None, scope: str | None) -> Principal:
        """Invoiless `api-key` header; a `scope-id` the key does not own is 403."""
        if not key:
            raise NotAuthenticated("Missing api-key header")
        if not _is_text(key):
            raise NotAuthenticated("Invalid api-key")
        found = await self._first_match(self._digest("invoiless", key), self._api_keys, key)
        if found is None:
            raise NotAuthenticated("Invalid api-key")
        if scope is not None and scope not in found.scopes:
            raise Forbidden("This api-key has no access to that scope")
        return found

    async def app_secret(self, body: Mapping[str, Any]) -> tuple[str, Principal]:
        """Refrens `POST /authentication` with the app-secret strategy: a signed token."""
        if body.get("strategy") != "app-secret":
            raise BadRequest("strategy must be app-secret")
        app_id, secret = body.get("appId"), body.get("appSecret")
        if not isinstance(app_id, str) or not isinstance(secret, str) or not _is_text(secret):
            raise NotAuthenticated("Invalid login")
        app = self._apps.get(app_id)
        stored = app.config.secret if app is not None else None
        if app is None or stored is None:
            await self._decoy_check(secret)
            raise NotAuthenticated("Invalid login")
        if not await passwords.verify(stored, secret):
            raise NotAuthenticated("Invalid login")
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": app_id,
            "aud": AUDIENCE,
            "business": app.business,
            "auth": {"entity": "app", "strategy": "app-secret"},
            "iat": now,
            "exp": now + self._token_lifetime,
        }
        token = jwt.encode(claims, self._token_key, algorithm="HS256")
        return token, self._app_principal(app)

    def bearer(self, header: str | None, business: str) -> Principal:
        """A urlKey bearer JWT: our own HS256 token, or one the app signed with ES256.

        The key and algorithm follow from the issuer we know, never from the token's
        header (`alg`, `kid`, `jku`, `x5u` are not consulted); the token opens only
        the business it was issued for.
        """
        token = _credentials(header, "bearer")
        if token is None or not _is_text(token):
            raise NotAuthenticated("Invalid authentication")
        try:
            issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError as exc:
            raise NotAuthenticated("Invalid authentication") from exc
        app = self._verify(token, issuer)
        if self._businesses.get(business) != app.tenant or business != app.business:
            raise Forbidden("This token does not open that business")
        return self._app_principal(app)

    def _verify(self, token: str, issuer: object) -> _App:
        options: jwt.types.Options = {"require": ["exp", "iat", "iss", "sub", "aud"]}
        try:
            if issuer == ISSUER:
                claims = jwt.decode(
                    token, self._token_key, algorithms=["HS256"], audience=AUDIENCE,
                    issuer=ISSUER, options=options, leeway=_LEEWAY,
                )  # fmt: skip
                app = self._apps.get(claims["sub"])
                if app is None or claims.get("business") != app.business:
                    raise NotAuthenticated("Invalid authentication")
                return app
            app = self._apps.get(issuer) if isinstance(issuer, str) else None
            if app is None or app.key is None or not isinstance(issuer, str):
                raise NotAuthenticated("Invalid authentication")
            claims = jwt.decode(
                token, app.key, algorithms=["ES256"], audience=AUDIENCE, issuer=issuer,
                options=options, leeway=_LEEWAY,
            )  # fmt: skip
        except jwt.PyJWTError as exc:
            raise NotAuthenticated(f"Invalid authentication: {exc}") from exc
        auth = claims.get("auth")
        if (
            claims["sub"] != issuer
            or not isinstance(auth, dict)
            or auth.get("entity") != "app"
            or auth.get("strategy") != "app-iss-app-token"
            or not _numeric_date(claims["exp"])
            or not _numeric_date(claims["iat"])
            or claims["exp"] - claims["iat"] > SELF_SIGNED_MAX_LIFETIME
        ):
            raise NotAuthenticated("Invalid authentication: claims not accepted")
        return app

    @staticmethod
    def _app_principal(app: _App) -> Principal:
        name = app.config.name or app.config.app_id
        app_id = app.config.app_id
        return Principal(app.tenant, "urlkey", name, app=app_id, credential=app_id)

    def admin(self, header: str | None) -> None:
        presented = _credentials(header, "bearer") or ""
        presented = presented if _is_text(presented) else ""
        expected = hashlib.sha256(self._admin_token.encode()).digest()
        if not presented or not hmac.compare_digest(
            hashlib.sha256(presented.encode()).digest(), expected
        ):
            raise NotAuthenticated("Admin token required")


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


def _numeric_date(value: object) -> bool:
    """A JSON number, as RFC 7519 requires (PyJWT also lets numeric strings through)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _load_public_key(pem: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    key = load_pem_public_key(pem.encode())
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("urlKey app public_key must be a P-256 (ES256) key")
    return key
