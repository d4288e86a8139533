"""Id tokens: the RFID cards and other tokens drivers identify with.

Every Authorize and every transaction start reads the token's row
(``store.tokens``), so a change here, a token blocked or its expiry moved,
holds from the next one on. Chargers that cache verdicts (2.0.1) ask again
within a day. Sessions and CDRs keep the token's value after it is deleted.
"""

import logging
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import Limit, Offset, OperatorDep, SessionDep, ViewerDep
from api.models import Page, Text, UtcDateTime, no_nul, unchanged
from api.paging import fetch_page, sorting
from api.problems import ProblemError, documented
from bus.contract import utcnow
from store.models import IdToken

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/id-tokens", tags=["id_tokens"])

# What a token may be set to; Authorize answers Expired past ``expires_at``.
TokenStatus = Literal["Accepted", "Blocked", "Expired", "Invalid"]
# The 2.0.1 IdTokenEnumType a token must be presented as.
TokenType = Literal[
    "Central",
    "eMAID",
    "ISO14443",
    "ISO15693",
    "KeyCode",
    "Local",
    "MacAddress",
    "NoAuthorization",
]
# 1.6 idTag (20) and 2.0.1 idToken (36): printable ASCII, no space, no "/".
TokenValue = Annotated[str, Field(min_length=1, max_length=36, pattern=r"^[!-.0-~]+$")]
Owner = Annotated[Text, Field(min_length=1, max_length=100)]
TokenPath = Annotated[str, Path(min_length=1, max_length=36)]


class IdTokenCreate(BaseModel):
    """Register an id token."""

    token: TokenValue
    token_type: TokenType | None = Field(
        default=None,
        description="2.0.1: the type it must be presented as; None: any.",
    )
    status: TokenStatus = "Accepted"
    expires_at: UtcDateTime | None = Field(
        default=None, description="After it, an Accepted token is Expired."
    )
    parent_token: TokenValue | None = Field(
        default=None,
        description="Its group: 1.6 parentIdTag, 2.0.1 groupIdToken.",
    )
    owner: Owner | None = None


class IdTokenUpdate(BaseModel):
    """Change an id token; fields left out stay, ``null`` clears."""

    token_type: TokenType | None = None
    status: TokenStatus = unchanged(description="Blocked takes effect at once.")
    expires_at: UtcDateTime | None = None
    parent_token: TokenValue | None = None
    owner: Owner | None = None


class IdTokenPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    token: str
    token_type: str | None
    status: str
    authorize_status: str = Field(
        description="What an Authorize gets now: Expired for an Accepted "
        "token past its expiry, else ``status``."
    )
    expires_at: datetime | None
    parent_token: str | None
    owner: str | None
    created_at: datetime


class IdTokenPage(Page[IdTokenPublic]):
    pass


SORT = sorting(
    {
        "token": col(IdToken.token),
        "created_at": col(IdToken.created_at),
        "expires_at": col(IdToken.expires_at),
        "owner": col(IdToken.owner),
        "status": col(IdToken.status),
    },
    default="token",
    tiebreak=col(IdToken.token),
)
TextFilter = Annotated[str | None, Query(max_length=100), AfterValidator(no_nul)]


def _public(row: IdToken) -> IdTokenPublic:
    status = row.status
    if status == "Accepted" and row.expires_at and row.expires_at <= utcnow():
        status = "Expired"
    return IdTokenPublic.model_validate(
        {**row.model_dump(), "authorize_status": status}
    )


async def _get(db: AsyncSession, token: str) -> IdToken:
    row = await db.get(IdToken, token)
    if row is None:
        raise ProblemError(404, "Not Found", f"No id token {token}.")
    return row


@router.get("", responses=documented(401, 403))
async def list_id_tokens(
    db: SessionDep,
    _: ViewerDep,
    order: Annotated[list[Any], Depends(SORT)],
    status: TokenStatus | None = None,
    token_type: TokenType | None = None,
    owner: Annotated[TextFilter, Query(description="Only of this owner.")] = None,
    parent_token: Annotated[
        TextFilter, Query(description="Only of this group.")
    ] = None,
    q: Annotated[
        TextFilter, Query(description="Only tokens starting with this.")
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> IdTokenPage:
    """List id tokens, by token unless sorted."""
    where: list[ColumnElement[bool]] = []
    if status is not None:
        where.append(col(IdToken.status) == status)
    if token_type is not None:
        where.append(col(IdToken.token_type) == token_type)
    if owner is not None:
        where.append(col(IdToken.owner) == owner)
    if parent_token is not None:
        where.append(col(IdToken.parent_token) == parent_token)
    if q:
        where.append(col(IdToken.token).startswith(q, autoescape=True))
    total, rows = await fetch_page(
        db, IdToken, where, order, limit=limit, offset=offset
    )
    return IdTokenPage(
        items=[_public(row) for row in rows], total=total, limit=limit, offset=offset
    )


@router.post("", status_code=201, responses=documented(401, 403, 409))
async def create_id_token(
    body: IdTokenCreate, response: Response, db: SessionDep, operator: OperatorDep
) -> IdTokenPublic:
    """Register an id token; chargers' next Authorize for it finds it."""
    if await db.get(IdToken, body.token) is not None:
        raise ProblemError(
            409,
            "id token exists",
            f"Id token {body.token} is registered already.",
            kind="id-token-exists",
        )
    row = IdToken(**body.model_dump())
    db.add(row)
    await db.commit()
    logger.info("id token registered", extra={"by": operator.name})
    response.headers["Location"] = f"/api/v1/id-tokens/{body.token}"
    return _public(row)


@router.get("/{token}", responses=documented(401, 403, 404))
async def get_id_token(token: TokenPath, db: SessionDep, _: ViewerDep) -> IdTokenPublic:
    """Return one id token."""
    return _public(await _get(db, token))


@router.patch("/{token}", responses=documented(401, 403, 404))
async def update_id_token(
    token: TokenPath, body: IdTokenUpdate, db: SessionDep, operator: OperatorDep
) -> IdTokenPublic:
    """Change an id token: block it, move its expiry, regroup it.

    Takes effect at the next Authorize or transaction start with it.
    """
    row = await _get(db, token)
    changes = body.model_dump(exclude_unset=True)
    for field, value in changes.items():
        setattr(row, field, value)
    db.add(row)
    await db.commit()
    logger.info(
        "id token changed: %s",
        ", ".join(sorted(changes)) or "nothing",
        extra={"by": operator.name},
    )
    return _public(row)


@router.delete("/{token}", status_code=204, responses=documented(401, 403, 404))
async def delete_id_token(
    token: TokenPath, db: SessionDep, operator: OperatorDep
) -> None:
    """Delete an id token: from now on it is Invalid. Its sessions stay."""
    row = await _get(db, token)
    await db.delete(row)
    await db.commit()
    logger.info("id token deleted", extra={"by": operator.name})
