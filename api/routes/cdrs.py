"""Charge detail records: one per billed session, never edited."""

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import func
from sqlmodel import col, select

from api.deps import SessionDep, ViewerDep
from api.models import CdrPage, CdrPublic
from api.problems import ProblemError, documented
from store.models import Cdr

router = APIRouter(prefix="/cdrs", tags=["cdrs"])


@router.get("", responses=documented(401, 403))
async def list_cdrs(
    db: SessionDep,
    _: ViewerDep,
    charger_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> CdrPage:
    """List CDRs, newest first, optionally of one charger."""
    query = select(Cdr)
    count = select(func.count()).select_from(Cdr)
    if charger_id is not None:
        query = query.where(Cdr.charger_id == charger_id)
        count = count.where(Cdr.charger_id == charger_id)

    total = (await db.exec(count)).one()
    rows = await db.exec(
        query.order_by(col(Cdr.stopped_at).desc(), col(Cdr.id))
        .limit(limit)
        .offset(offset)
    )
    return CdrPage(
        items=[CdrPublic.model_validate(row) for row in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/{cdr_id}", responses=documented(401, 403, 404))
async def get_cdr(cdr_id: str, db: SessionDep, _: ViewerDep) -> CdrPublic:
    """Return one CDR."""
    row = await db.get(Cdr, cdr_id)
    if row is None:
        raise ProblemError(404, "Not Found", f"No CDR {cdr_id}.")
    return CdrPublic.model_validate(row)
