"""The audit log: every command sent to a charger, who asked, what came back.

The ``send_command`` activity writes a row before it sends the command and
completes it with the charger's answer (``activities.commands``); credentials
a command sets are redacted there, before they are stored.
"""

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement
from sqlmodel import col

from api.deps import ChargerQuery, Limit, Offset, SessionDep, Since, Until, ViewerDep
from api.models import Page, no_nul
from api.paging import fetch_page, sorting
from api.problems import ProblemError, documented
from store.models import CommandAudit

router = APIRouter(prefix="/audit", tags=["audit"])

CommandKind = Literal["remote_start", "remote_stop", "ocpp_call"]


class AuditPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(description="The command's id, as the bus carried it.")
    charger_id: str
    command: str = Field(description="remote_start, remote_stop or ocpp_call.")
    action: str | None = Field(description="The OCPP action of an ocpp_call.")
    payload: dict[str, Any] = Field(description="The command, credentials redacted.")
    requested_by: str = Field(description="The operator, or the session workflow.")
    outcome: str | None = Field(
        description="answered, offline, timeout...; None while it waits."
    )
    status: str | None = Field(description="The status the charger answered.")
    result: dict[str, Any] | None
    created_at: datetime
    completed_at: datetime | None


class AuditPage(Page[AuditPublic]):
    pass


SORT = sorting(
    {
        "created_at": col(CommandAudit.created_at),
        "completed_at": col(CommandAudit.completed_at),
        "charger_id": col(CommandAudit.charger_id),
    },
    default="-created_at",
    tiebreak=col(CommandAudit.id),
)


def _text(description: str) -> Any:
    return Query(max_length=100, description=description)


def _public(row: CommandAudit) -> AuditPublic:
    action = row.payload.get("action") if row.command == "ocpp_call" else None
    return AuditPublic.model_validate(
        {**row.model_dump(), "action": action if isinstance(action, str) else None}
    )


@router.get("", responses=documented(401, 403))
async def list_audit(
    db: SessionDep,
    _: ViewerDep,
    order: Annotated[list[Any], Depends(SORT)],
    charger_id: ChargerQuery = None,
    command: CommandKind | None = None,
    action: Annotated[
        str | None,
        _text("Only this OCPP action, e.g. `Reset`."),
        AfterValidator(no_nul),
    ] = None,
    requested_by: Annotated[
        str | None, _text("Only asked for by this operator."), AfterValidator(no_nul)
    ] = None,
    outcome: Annotated[
        str | None, _text("e.g. `answered`, `offline`."), AfterValidator(no_nul)
    ] = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> AuditPage:
    """List the commands sent to chargers, newest first unless sorted.

    ``since`` and ``until`` bound the time the command was sent.
    """
    where: list[ColumnElement[bool]] = []
    if charger_id is not None:
        where.append(col(CommandAudit.charger_id) == charger_id)
    if command is not None:
        where.append(col(CommandAudit.command) == command)
    if action is not None:
        where.append(col(CommandAudit.payload)["action"].as_string() == action)
    if requested_by is not None:
        where.append(col(CommandAudit.requested_by) == requested_by)
    if outcome is not None:
        where.append(col(CommandAudit.outcome) == outcome)
    if since is not None:
        where.append(col(CommandAudit.created_at) >= since)
    if until is not None:
        where.append(col(CommandAudit.created_at) < until)
    total, rows = await fetch_page(
        db, CommandAudit, where, order, limit=limit, offset=offset
    )
    return AuditPage(
        items=[_public(row) for row in rows], total=total, limit=limit, offset=offset
    )


@router.get("/{audit_id}", responses=documented(401, 403, 404))
async def get_audit(
    audit_id: Annotated[str, Path(min_length=1, max_length=100)],
    db: SessionDep,
    _: ViewerDep,
) -> AuditPublic:
    """Return one audited command."""
    row = await db.get(CommandAudit, audit_id)
    if row is None:
        raise ProblemError(404, "Not Found", f"No audited command {audit_id}.")
    return _public(row)
