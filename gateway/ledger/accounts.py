"""A payment's deposit account against the tenant's list: code and id made one, the default applied."""

from __future__ import annotations

from dataclasses import replace

from dialects import Decoded
from dialects.errors import ValidationFailed
from gateway.config import Account, Tenant


def resolve(tenant: Tenant, request: Decoded) -> Decoded:
    """The request with its account completed from the tenant's accounts.

    No account named: the tenant's default, if it has one. An account named by code
    or id must be one the tenant lists (when it lists any); both are then filled in.
    """
    payment = request.payment
    code, account_id = payment.account_code, payment.account_id
    if code is None and account_id is None:
        code = tenant.default_account
        if code is None:
            return request
    found = _listed(tenant.accounts, code, account_id)
    if found is not None:
        code, account_id = found.code, found.id
    provided = {"account_code"} | ({"account_id"} if account_id is not None else set())
    completed = payment.model_copy(update={"account_code": code, "account_id": account_id})
    return replace(request, payment=completed, provided=request.provided | provided)


def _listed(
    accounts: tuple[Account, ...], code: str | None, account_id: str | None
) -> Account | None:
    if not accounts:
        return None
    for account in accounts:
        if (code is None or account.code == code) and (
            account_id is None or account.id == account_id
        ):
            return account
    attr = "account_code" if code is not None else "account_id"
    raise ValidationFailed(fields={attr: "is not an account of this organisation"})
