"""Request authentication for the platform API.

Two credentials, both required on account endpoints: the calling service's bearer key (only the
bot, or another trusted service, may speak to the platform at all) and the account token that the
account's own login produced (which account the call acts for). Other routers build on
``service_router`` and the ``ServicesDep`` / ``AccountDep`` aliases.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from seal_platform import accounts
from seal_platform.accounts import Account
from seal_platform.errors import NotAuthenticated
from seal_platform.security import constant_time_equals
from seal_platform.services import PlatformServices, get_services

ACCOUNT_TOKEN_HEADER = "X-Account-Token"  # a header name, not a secret

_service_bearer = HTTPBearer(
    auto_error=False, scheme_name="ServiceKey", description="The platform service key"
)
_account_token = APIKeyHeader(
    name=ACCOUNT_TOKEN_HEADER,
    auto_error=False,
    scheme_name="AccountToken",
    description="From POST /v1/sessions",
)

ServicesDep = Annotated[PlatformServices, Depends(get_services)]


async def require_service(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_service_bearer)],
) -> None:
    if credentials is None:
        raise NotAuthenticated("service credential required", code="service_credential_missing")
    expected = services.settings.service_key.get_secret_value()
    if not constant_time_equals(credentials.credentials, expected):
        raise NotAuthenticated("service credential rejected", code="service_credential_invalid")


async def current_account(
    services: ServicesDep,
    _service: Annotated[None, Depends(require_service)],
    token: Annotated[str | None, Security(_account_token)],
) -> Account:
    """The account the call acts for, loaded in a short session of its own.

    The returned object is detached: read it freely; to change it, load it again inside the
    handler's unit of work (``accounts.get_account(session, account.id)``).
    """
    if not token:
        raise NotAuthenticated("请先登录", code="account_token_missing")
    async with services.db.session() as session:
        return await accounts.account_for_token(session, services, token)


AccountDep = Annotated[Account, Depends(current_account)]
AccountTokenDep = Annotated[str | None, Security(_account_token)]


def service_router(**kwargs: Any) -> APIRouter:
    """An ``APIRouter`` whose every route requires the service credential."""
    dependencies = [Depends(require_service), *kwargs.pop("dependencies", [])]
    return APIRouter(dependencies=dependencies, **kwargs)
