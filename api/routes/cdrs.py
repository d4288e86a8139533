"""Charge detail records: one per billed session, never edited."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy import ColumnElement
from sqlmodel import col

from api.deps import (
    ChargerQuery,
    IdTokenQuery,
    Limit,
    Offset,
    SessionDep,
    Since,
    Until,
    ViewerDep,
)
from api.models import CdrPage, CdrPublic
from api.paging import fetch_page, sorting
from api.problems import ProblemError, documented
from store.models import Cdr

router = APIRouter(prefix="/cdrs", tags=["cdrs"])

SORT = sorting(
    {
        "stopped_at": col(Cdr.stopped_at),
        "started_at": col(Cdr.started_at),
        "energy_wh": col(Cdr.energy_wh),
        "total_incl_vat": col(Cdr.total_incl_vat),
        "charger_id": col(Cdr.charger_id),
    },
    default="-stopped_at",
    tiebreak=col(Cdr.id),
)
CdrPath = Annotated[str, Path(min_length=1, max_length=100)]


@router.get("", responses=documented(401, 403))
async def list_cdrs(
    db: SessionDep,
    _: ViewerDep,
    order: Annotated[list[Any], Depends(SORT)],
    charger_id: ChargerQuery = None,
    id_token: IdTokenQuery = None,
    session_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> CdrPage:
    """List CDRs, newest first unless sorted.

    ``since`` and ``until`` bound the stop time, the one a billing period
    counts a session by.
    """
    where: list[ColumnElement[bool]] = []
    if charger_id is not None:
        where.append(col(Cdr.charger_id) == charger_id)
    if id_token is not None:
        where.append(col(Cdr.id_token) == id_token)
    if session_id is not None:
        where.append(col(Cdr.session_id) == session_id)
    if since is not None:
        where.append(col(Cdr.stopped_at) >= since)
    if until is not None:
        where.append(col(Cdr.stopped_at) < until)
    total, rows = await fetch_page(db, Cdr, where, order, limit=limit, offset=offset)
    return CdrPage(
        items=[CdrPublic.model_validate(row) for row in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/{cdr_id}", responses=documented(401, 403, 404))
async def get_cdr(cdr_id: CdrPath, db: SessionDep, _: ViewerDep) -> CdrPublic:
    """Return one CDR."""
    row = await db.get(Cdr, cdr_id)
    if row is None:
        raise ProblemError(404, "Not Found", f"No CDR {cdr_id}.")
    return CdrPublic.model_validate(row)
