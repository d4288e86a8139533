"""Charge sessions: their rows, their live view from the workflow, stops."""

import logging
from typing import Annotated

from fastapi import APIRouter, Query
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import WorkflowQueryFailedError
from temporalio.service import RPCError

from api.commands import check_answer, execute_update, unavailable_from
from api.deps import (
    Limit,
    Offset,
    OperatorDep,
    SessionDep,
    SettingsDep,
    TemporalDep,
    ViewerDep,
)
from api.models import (
    MeterValuePage,
    MeterValuePublic,
    SessionDetail,
    SessionLive,
    SessionPage,
    SessionPublic,
    StopPublic,
)
from api.paging import fetch_page
from api.problems import ProblemError, documented
from api.temporal_link import TemporalLink, TemporalUnavailable
from moovolt.settings import Settings
from store.models import MeterValue, Session
from workflows.types import REQUEST_STOP, VIEW, SessionState, SessionView, StopRequest

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/sessions", tags=["sessions"])


# States in which the workflow is alive and answers its ``view`` query.
RUNNING = frozenset(
    {
        SessionState.REMOTE_START_REQUESTED,
        SessionState.AUTHORIZING,
        SessionState.CHARGING,
        SessionState.SILENT,
        SessionState.REJECTED,
    }
)
# States in which an operator may ask the charger to stop (as the workflow).
STOPPABLE = frozenset(
    {SessionState.CHARGING, SessionState.SILENT, SessionState.REJECTED}
)


def temporal_ui_url(settings: Settings, workflow_id: str) -> str:
    """Return the Temporal UI page of a session's workflow."""
    base = settings.temporal_ui_url.rstrip("/")
    return f"{base}/namespaces/{settings.temporal_namespace}/workflows/{workflow_id}"


async def _get_session(db: AsyncSession, session_id: int) -> Session:
    row = await db.get(Session, session_id)
    if row is None:
        raise ProblemError(404, "Not Found", f"No session {session_id}.")
    return row


async def _live_view(
    temporal: TemporalLink, row: Session
) -> tuple[SessionLive | None, str | None]:
    try:
        client = await temporal.client()
        view = await client.get_workflow_handle(row.workflow_id).query(
            VIEW, result_type=SessionView
        )
    except TemporalUnavailable:
        return None, "Temporal does not answer."
    except (RPCError, WorkflowQueryFailedError) as exc:
        logger.warning(
            "view query failed: %s", exc, extra={"workflow_id": row.workflow_id}
        )
        return None, "The session's workflow did not answer."
    return SessionLive(
        energy_wh=view.energy_wh, cost=view.cost, progress=view.progress
    ), None


@router.get("", responses=documented(401, 403))
async def list_sessions(
    db: SessionDep,
    _: ViewerDep,
    charger_id: str | None = None,
    state: SessionState | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> SessionPage:
    """List sessions, newest first, optionally of one charger or in one state."""
    where = []
    if charger_id is not None:
        where.append(col(Session.charger_id) == charger_id)
    if state is not None:
        where.append(col(Session.state) == state.value)
    total, rows = await fetch_page(
        db, Session, where, [col(Session.id).desc()], limit=limit, offset=offset
    )
    return SessionPage(
        items=[SessionPublic.model_validate(row) for row in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/{session_id}", responses=documented(401, 403, 404))
async def get_session(
    session_id: int,
    db: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    _: ViewerDep,
) -> SessionDetail:
    """Return one session; while it runs, with energy and cost so far.

    The live part comes from the workflow's ``view`` query. If Temporal does
    not answer, the stored row is still returned, with ``live_error`` set.
    """
    row = await _get_session(db, session_id)
    live, live_error = None, None
    if row.state in RUNNING:
        live, live_error = await _live_view(temporal, row)
    return SessionDetail.model_validate(
        {
            **row.model_dump(),
            "temporal_ui_url": temporal_ui_url(settings, row.workflow_id),
            "live": live,
            "live_error": live_error,
        }
    )


@router.get("/{session_id}/meter-values", responses=documented(401, 403, 404))
async def list_meter_values(
    session_id: int,
    db: SessionDep,
    _: ViewerDep,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    offset: Offset = 0,
) -> MeterValuePage:
    """List the samples the charger sent for the session, oldest first."""
    row = await _get_session(db, session_id)
    match = [
        col(MeterValue.charger_id) == row.charger_id,
        col(MeterValue.transaction_id) == row.transaction_id,
    ]
    total, samples = await fetch_page(
        db,
        MeterValue,
        match,
        [col(MeterValue.sampled_at), col(MeterValue.id)],
        limit=limit,
        offset=offset,
    )
    return MeterValuePage(
        items=[MeterValuePublic.model_validate(s) for s in samples],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.post(
    "/{session_id}/stop",
    responses=documented(401, 403, 404, 409, 501, 502, 503, 504),
)
async def stop_session(
    session_id: int,
    db: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    operator: OperatorDep,
) -> StopPublic:
    """Ask the charger to stop a running session; answers with its answer.

    The session ends (and is billed) when the charger reports the stop.
    """
    row = await _get_session(db, session_id)
    assert row.id is not None
    if row.state not in STOPPABLE:
        raise ProblemError(
            409,
            "session not running",
            f"Session {session_id} is {row.state}; it cannot be stopped.",
            kind="session-not-running",
            state=row.state,
        )

    client = await temporal.client()
    ids = {"session_id": row.id, "workflow_id": row.workflow_id}
    logger.info("stop requested", extra={"session_id": row.id, "by": operator.name})
    try:
        handle = client.get_workflow_handle(row.workflow_id)
        result = await execute_update(
            handle,
            REQUEST_STOP,
            StopRequest(requested_by=operator.name),
            charger_id=row.charger_id,
            timeout_s=settings.call_timeout_s,
            extra=ids,
        )
    except RPCError as exc:
        raise unavailable_from(exc) from exc
    check_answer(result, **ids)
    return StopPublic(
        **ids, outcome=result.outcome, status=result.status, payload=result.payload
    )
