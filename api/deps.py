"""Dependencies of the API routes: settings, database, Temporal, the caller."""

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from api.temporal_link import TemporalLink
from bus.contract import utcnow
from moovolt.auth import Role, token_owner
from moovolt.settings import Settings
from store.models import Operator

logger = logging.getLogger(__name__)

# Pagination of every list.
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0)]

# A token's last use is recorded at most this often, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)

_bearer = HTTPBearer(
    auto_error=False,
    description="An API token from `moovolt operator create`.",
)


def get_settings(request: Request) -> Settings:
    """Return the settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    """Yield a database session for one request."""
    factory: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with factory() as db:
        yield db


def get_temporal(request: Request) -> TemporalLink:
    """Return the app's Temporal link (connect with ``await link.client()``)."""
    link: TemporalLink = request.app.state.temporal
    return link


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[AsyncSession, Depends(get_db)]
TemporalDep = Annotated[TemporalLink, Depends(get_temporal)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _unauthorized(detail: str, error: str | None = None) -> HTTPException:
    challenge = 'Bearer realm="moovolt"'
    if error:
        challenge += f', error="{error}"'
    return HTTPException(401, detail, headers={"WWW-Authenticate": challenge})


async def current_operator(credentials: Credentials, db: SessionDep) -> Operator:
    """Return the operator whose bearer token the request carries.

    Raises:
        HTTPException: 401 when the token is missing or unknown.
    """
    if credentials is None or not credentials.credentials:
        raise _unauthorized("A bearer token is required.")

    found = await token_owner(db, credentials.credentials)
    if found is None:
        raise _unauthorized("The bearer token is not valid.", "invalid_token")
    token, operator = found

    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        token.last_used_at = now
        db.add(token)
        await db.commit()
    return operator


CurrentOperator = Annotated[Operator, Depends(current_operator)]


def require(role: Role) -> Callable[[Operator], Awaitable[Operator]]:
    """Return a dependency admitting operators of ``role`` or higher.

    Raises (from the dependency):
        HTTPException: 403 when the operator's role is lower.
    """

    async def check(operator: CurrentOperator) -> Operator:
        try:
            granted = Role(operator.role)
        except ValueError:
            granted = Role.VIEWER
        if not granted.allows(role):
            raise HTTPException(
                403, f"This needs the {role.value} role; you are {operator.role}."
            )
        return operator

    return check


ViewerDep = Annotated[Operator, Depends(require(Role.VIEWER))]
OperatorDep = Annotated[Operator, Depends(require(Role.OPERATOR))]
AdminDep = Annotated[Operator, Depends(require(Role.ADMIN))]
