"""OAuth 2.0 at a dialect's token endpoint: the form read, the client found, RFC 6749's
error answers, and a backend's token answer read back (proxy mode)."""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping
from urllib.parse import parse_qs

from . import _json
from .base import Reply
from .errors import BadRequest, GatewayError, NotAuthenticated, UpstreamError


class OAuthRefused(BadRequest):
    """A token request refused with one of RFC 6749's error codes (section 5.2)."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code


def read_form(body: bytes, grant: str) -> dict[str, str]:
    """A token request's form, its `grant_type` the one the endpoint serves: refused
    `invalid_request` when it cannot be read (not UTF-8, a repeated parameter, no
    grant type), `unsupported_grant_type` for another grant."""
    try:
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError as exc:
        raise OAuthRefused("invalid_request", "the form is not UTF-8") from exc
    repeated = sorted(name for name, values in form.items() if len(values) > 1)
    if repeated:
        raise OAuthRefused("invalid_request", f"{repeated[0]} is given more than once")
    found = {name: values[0] for name, values in form.items()}
    if not found.get("grant_type"):
        raise OAuthRefused("invalid_request", "grant_type is missing")
    if found["grant_type"] != grant:
        raise OAuthRefused("unsupported_grant_type", f"grant_type must be {grant}")
    return found


def client_of(form: Mapping[str, str], headers: Mapping[str, str]) -> tuple[str, str]:
    """The client's id and secret: in Basic (`client_secret_basic`), else in the form
    (`client_secret_post`); neither is `invalid_client`."""
    scheme, _, encoded = headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() == "basic" and encoded.strip():
        try:
            pair = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except ValueError as exc:
            raise NotAuthenticated("invalid_client") from exc
        client, _, secret = pair.partition(":")
    else:
        client, secret = form.get("client_id", ""), form.get("client_secret", "")
    if not client or not secret:
        raise NotAuthenticated("invalid_client")
    return client, secret


def token_error(error: GatewayError, realm: str) -> Reply | None:
    """An OAuth 2.0 client's error answer (RFC 6749 section 5.2) for a refused token
    request: 401 `invalid_client` when the client is not authenticated (with a Basic
    challenge naming `realm`), else 400 with the code (`invalid_request` for a request
    that cannot be read). None for the rest (limits, the server's own troubles): the
    dialect answers those itself."""
    if isinstance(error, NotAuthenticated):
        status, code, description = 401, "invalid_client", "Client authentication failed"
    elif error.status in (400, 406, 413, 415) and not error.fields:
        status, description = 400, error.message
        code = error.code if isinstance(error, OAuthRefused) else "invalid_request"
        description = description.removeprefix(f"{code}: ")
    else:
        return None
    headers = {
        **error.headers(),
        "Content-Type": "application/json; charset=utf-8",
        "Cache-Control": "no-store",
        "Pragma": "no-cache",
    }
    if status == 401:
        headers["WWW-Authenticate"] = f'Basic realm="{realm}"'
    document = {"error": code, "error_description": description}
    return Reply(status, _json.dumps(document), headers)


def token_from(status: int, data: bytes) -> tuple[str, float | None]:
    """The access token of a token endpoint's answer, and when it expires (epoch seconds,
    None: unknown); anything else is the backend refusing the gateway's credentials."""
    try:
        document = _json.loads(data) if status == 200 else None
    except GatewayError:
        document = None
    token = document.get("access_token") if isinstance(document, dict) else None
    if not isinstance(token, str):
        raise UpstreamError("The backend refused the gateway's credentials")
    lifetime = document.get("expires_in") if isinstance(document, dict) else None
    valid = isinstance(lifetime, int) and not isinstance(lifetime, bool)
    return token, time.time() + lifetime if valid else None  # type: ignore[operator]
