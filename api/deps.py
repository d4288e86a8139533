"""Dependencies of the API routes: settings, database, Temporal, the caller."""

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from api.models import MAX_BIGINT, MAX_INT, UtcDateTime, no_nul
from api.problems import problem_doc
from api.temporal_link import TemporalLink
from bus.contract import utcnow
from moovolt.auth import Role, token_owner
from moovolt.settings import Settings
from store.models import Operator

logger = logging.getLogger(__name__)

# Pagination of every list.
MAX_OFFSET = 2**31 - 1
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]

# Filters of lists.
TextQuery = Annotated[str | None, Query(max_length=100), AfterValidator(no_nul)]
ChargerQuery = Annotated[
    str | None,
    Query(max_length=48, description="Only of this charger."),
    AfterValidator(no_nul),
]
IdTokenQuery = Annotated[
    str | None,
    Query(max_length=36, description="Only of this id token."),
    AfterValidator(no_nul),
]
Since = Annotated[UtcDateTime | None, Query(description="At or after this time.")]
Until = Annotated[UtcDateTime | None, Query(description="Before this time.")]

# Path parameters: ids within their column's range.
ChargerPath = Annotated[
    str, Path(min_length=1, max_length=48, description="The charge point id.")
]
IntId = Annotated[int, Path(ge=1, le=MAX_INT)]
BigId = Annotated[int, Path(ge=1, le=MAX_BIGINT)]

# The OpenAPI extension naming the role an operation needs.
ROLE_EXTENSION = "x-required-role"

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

    The dependency carries the role as ``required_role``: the route's
    dependency is the table of who may call it (``required_role``).

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

    check.required_role = role  # type: ignore[attr-defined]
    return check


ViewerDep = Annotated[Operator, Depends(require(Role.VIEWER))]
OperatorDep = Annotated[Operator, Depends(require(Role.OPERATOR))]
AdminDep = Annotated[Operator, Depends(require(Role.ADMIN))]


def _roles_in(dependant: Dependant) -> Iterable[Role]:
    role = getattr(dependant.call, "required_role", None)
    if isinstance(role, Role):
        yield role
    for sub in dependant.dependencies:
        yield from _roles_in(sub)


def required_role(route: Any) -> Role | None:
    """Return the role a route's dependencies require; None for an open route.

    Args:
        route: an ``APIRoute``, or the ``RouteContext`` of one as
            ``iter_route_contexts`` yields it.
    """
    roles = list(_roles_in(route.dependant))
    return max(roles, key=lambda role: role.rank) if roles else None


def document_roles(routes: Iterable[Any], schema: dict[str, Any]) -> None:
    """Write each operation's role into ``schema`` (OpenAPI), in place.

    Each authenticated operation gets ``x-required-role``, a sentence in its
    description and its 401 and 403 answers, so the document alone tells a
    client who may call what.
    """
    for route in iter_route_contexts(list(routes)):
        if not isinstance(route.original_route, APIRoute):
            continue
        role = required_role(route)
        if role is None or not route.include_in_schema:
            continue
        operations = schema["paths"].get(route.path_format, {})
        for method in route.methods or ():
            operation = operations.get(method.lower())
            if operation is None:
                continue
            operation[ROLE_EXTENSION] = role.value
            responses = operation.setdefault("responses", {})
            responses.setdefault("401", problem_doc(401))
            if role is not Role.VIEWER:
                responses.setdefault("403", problem_doc(403))
            needs = f"Needs the `{role.value}` role or higher."
            description = operation.get("description")
            operation["description"] = (
                f"{description}\n\n{needs}" if description else needs
            )
