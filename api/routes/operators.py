"""Operators of the API and their API tokens (admin only, but ``/me``).

A token is shown once, when it is issued; only its SHA-256 is kept, and its
list shows its name and when it was made and last used. An admin can neither
delete nor demote themself, so there is always an admin left.
"""

import asyncio
import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import AdminDep, IntId, Limit, Offset, SessionDep, ViewerDep
from api.models import Page, Text, no_nul, unchanged
from api.paging import fetch_page, sorting
from api.problems import ProblemError, documented
from moovolt.auth import Role, hash_password, issue_api_token
from store.models import ApiToken, Operator

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/operators", tags=["operators"])

OperatorName = Annotated[
    Text,
    Field(
        min_length=1,
        max_length=100,
        pattern=r"^\S(.*\S)?$",
        description="Unique; it names the operator in the audit log.",
    ),
]
Password = Annotated[
    Text,
    Field(
        min_length=12,
        max_length=256,
        description="For a login to come; only its argon2 hash is kept.",
    ),
]
TokenName = Annotated[Text, Field(min_length=1, max_length=100)]


class OperatorCreate(BaseModel):
    """Register an operator; issue it a token next."""

    name: OperatorName
    role: Role = Role.OPERATOR
    password: Password | None = None


class OperatorUpdate(BaseModel):
    """Change an operator; fields left out stay, a ``null`` password clears it."""

    role: Role = unchanged(description="Not your own.")
    password: Password | None = None


class OperatorPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    role: str
    has_password: bool
    created_at: datetime


class OperatorPage(Page[OperatorPublic]):
    pass


class ApiTokenCreate(BaseModel):
    """Issue an API token."""

    name: TokenName = Field(
        default="default", description="What it is for, to tell tokens apart."
    )


class ApiTokenPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    operator_id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None = Field(
        description="To the minute; None if never used."
    )


class ApiTokenIssued(ApiTokenPublic):
    token: str = Field(description="The bearer token, shown this once only.")


class ApiTokenPage(Page[ApiTokenPublic]):
    pass


SORT = sorting(
    {
        "id": col(Operator.id),
        "name": col(Operator.name),
        "created_at": col(Operator.created_at),
    },
    default="id",
    tiebreak=col(Operator.id),
)
NamePrefix = Annotated[
    str | None,
    Query(max_length=100, description="Only names starting with this, any case."),
    AfterValidator(no_nul),
]


def _public(operator: Operator) -> OperatorPublic:
    return OperatorPublic.model_validate(
        {**operator.model_dump(), "has_password": operator.password_hash is not None}
    )


async def _get(db: AsyncSession, operator_id: int) -> Operator:
    operator = await db.get(Operator, operator_id)
    if operator is None:
        raise ProblemError(404, "Not Found", f"No operator {operator_id}.")
    return operator


async def _hash(password: str | None) -> str | None:
    # argon2 takes a while: off the event loop.
    return await asyncio.to_thread(hash_password, password) if password else None


def _yourself(what: str) -> ProblemError:
    return ProblemError(
        409,
        "not on yourself",
        f"You cannot {what} yourself; ask another admin.",
        kind="own-operator",
    )


@router.get("/me", responses=documented(401))
async def get_me(me: ViewerDep) -> OperatorPublic:
    """Return the operator the bearer token belongs to."""
    return _public(me)


@router.get("", responses=documented(401, 403))
async def list_operators(
    db: SessionDep,
    _: AdminDep,
    order: Annotated[list[Any], Depends(SORT)],
    role: Role | None = None,
    q: NamePrefix = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> OperatorPage:
    """List operators, by id unless sorted."""
    where: list[ColumnElement[bool]] = []
    if role is not None:
        where.append(col(Operator.role) == role.value)
    if q:
        where.append(col(Operator.name).istartswith(q, autoescape=True))
    total, rows = await fetch_page(
        db, Operator, where, order, limit=limit, offset=offset
    )
    return OperatorPage(
        items=[_public(row) for row in rows], total=total, limit=limit, offset=offset
    )


@router.post("", status_code=201, responses=documented(401, 403, 409))
async def create_operator(
    body: OperatorCreate, response: Response, db: SessionDep, admin: AdminDep
) -> OperatorPublic:
    """Register an operator with a role; issue it a token next."""
    found = await db.exec(select(Operator.id).where(col(Operator.name) == body.name))
    if found.first() is not None:
        raise ProblemError(
            409,
            "operator exists",
            f"An operator named {body.name} exists already.",
            kind="operator-exists",
        )
    operator = Operator(
        name=body.name, role=body.role.value, password_hash=await _hash(body.password)
    )
    db.add(operator)
    await db.commit()
    logger.info(
        "operator created",
        extra={"operator": body.name, "role": body.role.value, "by": admin.name},
    )
    response.headers["Location"] = f"/api/v1/operators/{operator.id}"
    return _public(operator)


@router.get("/{operator_id}", responses=documented(401, 403, 404))
async def get_operator(
    operator_id: IntId, db: SessionDep, _: AdminDep
) -> OperatorPublic:
    """Return one operator."""
    return _public(await _get(db, operator_id))


@router.patch("/{operator_id}", responses=documented(401, 403, 404, 409))
async def update_operator(
    operator_id: IntId, body: OperatorUpdate, db: SessionDep, admin: AdminDep
) -> OperatorPublic:
    """Change an operator's role or password; not your own role."""
    operator = await _get(db, operator_id)
    changes = body.model_dump(exclude_unset=True)
    if "role" in changes and operator.id == admin.id and changes["role"] != Role.ADMIN:
        raise _yourself("demote")

    if "role" in changes:
        operator.role = Role(changes["role"]).value
    if "password" in changes:
        operator.password_hash = await _hash(changes["password"])
    db.add(operator)
    await db.commit()
    logger.info(
        "operator changed: %s",
        ", ".join(sorted(changes)) or "nothing",
        extra={"operator": operator.name, "by": admin.name},
    )
    return _public(operator)


@router.delete(
    "/{operator_id}", status_code=204, responses=documented(401, 403, 404, 409)
)
async def delete_operator(operator_id: IntId, db: SessionDep, admin: AdminDep) -> None:
    """Delete an operator and revoke its tokens; not yourself.

    The audit log keeps its name on the commands it sent.
    """
    operator = await _get(db, operator_id)
    if operator.id == admin.id:
        raise _yourself("delete")

    await db.exec(delete(ApiToken).where(col(ApiToken.operator_id) == operator_id))
    await db.delete(operator)
    await db.commit()
    logger.info("operator deleted", extra={"operator": operator.name, "by": admin.name})


@router.get("/{operator_id}/tokens", responses=documented(401, 403, 404))
async def list_tokens(
    operator_id: IntId,
    db: SessionDep,
    _: AdminDep,
    limit: Limit = 50,
    offset: Offset = 0,
) -> ApiTokenPage:
    """List an operator's API tokens, oldest first; never the tokens themselves."""
    await _get(db, operator_id)
    total, rows = await fetch_page(
        db,
        ApiToken,
        [col(ApiToken.operator_id) == operator_id],
        [col(ApiToken.id)],
        limit=limit,
        offset=offset,
    )
    return ApiTokenPage(
        items=[ApiTokenPublic.model_validate(row) for row in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.post(
    "/{operator_id}/tokens", status_code=201, responses=documented(401, 403, 404)
)
async def issue_token(
    operator_id: IntId, body: ApiTokenCreate, db: SessionDep, admin: AdminDep
) -> ApiTokenIssued:
    """Issue an API token to an operator; the answer shows it, this once only."""
    operator = await _get(db, operator_id)
    row, token = await issue_api_token(db, operator, name=body.name)
    logger.info("api token issued by %s", admin.name, extra={"by": admin.name})
    return ApiTokenIssued.model_validate({**row.model_dump(), "token": token})


@router.delete(
    "/{operator_id}/tokens/{token_id}",
    status_code=204,
    responses=documented(401, 403, 404),
)
async def revoke_token(
    operator_id: IntId, token_id: IntId, db: SessionDep, admin: AdminDep
) -> None:
    """Revoke an API token: it is refused from the next request on."""
    row = await db.get(ApiToken, token_id)
    if row is None or row.operator_id != operator_id:
        raise ProblemError(
            404, "Not Found", f"Operator {operator_id} has no token {token_id}."
        )
    await db.delete(row)
    await db.commit()
    logger.info("api token %s revoked", token_id, extra={"by": admin.name})
