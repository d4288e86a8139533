"""Charge detail records: one per billed session, never edited."""

from fastapi import APIRouter
from sqlmodel import col

from api.deps import Limit, Offset, SessionDep, ViewerDep
from api.models import CdrPage, CdrPublic
from api.paging import fetch_page
from api.problems import ProblemError, documented
from store.models import Cdr

router = APIRouter(prefix="/cdrs", tags=["cdrs"])


@router.get("", responses=documented(401, 403))
async def list_cdrs(
    db: SessionDep,
    _: ViewerDep,
    charger_id: str | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> CdrPage:
    """List CDRs, newest first, optionally of one charger."""
    where = [] if charger_id is None else [col(Cdr.charger_id) == charger_id]
    total, rows = await fetch_page(
        db,
        Cdr,
        where,
        [col(Cdr.stopped_at).desc(), col(Cdr.id)],
        limit=limit,
        offset=offset,
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
