"""Charge sessions: their rows, their live view from the workflow, stops."""

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import AfterValidator
from sqlalchemy import ColumnElement, false
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import WorkflowQueryFailedError
from temporalio.service import RPCError

from api.commands import check_answer, execute_update, unavailable_from
from api.deps import (
    BigId,
    ChargerQuery,
    IdTokenQuery,
    Limit,
    Offset,
    OperatorDep,
    SessionDep,
    SettingsDep,
    Since,
    TemporalDep,
    Until,
    ViewerDep,
)
from api.models import (
    MeterSeries,
    MeterSeriesPublic,
    MeterValuePage,
    MeterValuePublic,
    SessionDetail,
    SessionLive,
    SessionPage,
    SessionPublic,
    StopPublic,
    no_nul,
)
from api.paging import fetch_page, sorting
from api.problems import ProblemError, documented
from api.temporal_link import TemporalLink, TemporalUnavailable
from billing.tariff import Cost
from moovolt.settings import Settings
from store.models import Cdr, MeterValue, Session
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

SORT = sorting(
    {
        "id": col(Session.id),
        "created_at": col(Session.created_at),
        "started_at": col(Session.started_at),
        "stopped_at": col(Session.stopped_at),
        "energy_wh": col(Session.energy_wh),
        "charger_id": col(Session.charger_id),
    },
    default="-id",
    tiebreak=col(Session.id),
)
Measurand = Annotated[
    str | None,
    Query(
        max_length=100,
        description="Only this measurand, e.g. `Energy.Active.Import.Register`.",
    ),
    AfterValidator(no_nul),
]
# Samples one series answer holds at most.
MAX_SERIES_SAMPLES = 100_000


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
    order: Annotated[list[Any], Depends(SORT)],
    charger_id: ChargerQuery = None,
    state: SessionState | None = None,
    running: Annotated[
        bool | None,
        Query(description="Only live sessions (true) or only past ones (false)."),
    ] = None,
    id_token: IdTokenQuery = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> SessionPage:
    """List sessions, newest first unless sorted.

    ``since`` and ``until`` bound the start time; a session that never started
    falls outside any such range.
    """
    where: list[ColumnElement[bool]] = []
    if charger_id is not None:
        where.append(col(Session.charger_id) == charger_id)
    if state is not None:
        where.append(col(Session.state) == state.value)
    if running is not None:
        live = col(Session.state).in_([s.value for s in RUNNING])
        where.append(live if running else ~live)
    if id_token is not None:
        where.append(col(Session.id_token) == id_token)
    if since is not None:
        where.append(col(Session.started_at) >= since)
    if until is not None:
        where.append(col(Session.started_at) < until)
    total, rows = await fetch_page(
        db, Session, where, order, limit=limit, offset=offset
    )
    return SessionPage(
        items=[SessionPublic.model_validate(row) for row in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


def _final_cost(cdr: Cdr) -> Cost:
    return Cost(
        currency=cdr.currency,
        energy=cdr.cost_energy,
        time=cdr.cost_time,
        session=cdr.cost_session,
        total_excl_vat=cdr.total_excl_vat,
        vat=cdr.vat,
        total_incl_vat=cdr.total_incl_vat,
    )


@router.get("/{session_id}", responses=documented(401, 403, 404))
async def get_session(
    session_id: BigId,
    db: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    _: ViewerDep,
) -> SessionDetail:
    """Return one session; while it runs, with energy and cost so far.

    The live part comes from the workflow's ``view`` query. If Temporal does
    not answer, the stored row is still returned, with ``live_error`` set.
    Once billed, ``cost`` and ``cdr_id`` come from its CDR.
    """
    row = await _get_session(db, session_id)
    live, live_error = None, None
    if row.state in RUNNING:
        live, live_error = await _live_view(temporal, row)
    cdr = (await db.exec(select(Cdr).where(col(Cdr.session_id) == row.id))).first()
    return SessionDetail.model_validate(
        {
            **row.model_dump(),
            "cdr_id": cdr.id if cdr else None,
            "cost": _final_cost(cdr) if cdr else None,
            "temporal_ui_url": temporal_ui_url(settings, row.workflow_id),
            "live": live,
            "live_error": live_error,
        }
    )


def _samples_of(row: Session, measurand: str | None) -> list[ColumnElement[bool]]:
    if row.transaction_id is None:
        return [false()]  # not "IS NULL": samples outside any transaction
    where = [
        col(MeterValue.charger_id) == row.charger_id,
        col(MeterValue.transaction_id) == row.transaction_id,
    ]
    if measurand is not None:
        where.append(col(MeterValue.measurand) == measurand)
    return where


@router.get("/{session_id}/meter-values", responses=documented(401, 403, 404))
async def list_meter_values(
    session_id: BigId,
    db: SessionDep,
    _: ViewerDep,
    measurand: Measurand = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    offset: Offset = 0,
) -> MeterValuePage:
    """List the samples the charger sent for the session, oldest first."""
    row = await _get_session(db, session_id)
    match = _samples_of(row, measurand)
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


@router.get("/{session_id}/meter-values/series", responses=documented(401, 403, 404))
async def meter_series(
    session_id: BigId,
    db: SessionDep,
    _: ViewerDep,
    measurand: Measurand = None,
    limit: Annotated[int, Query(ge=1, le=MAX_SERIES_SAMPLES)] = 10_000,
) -> MeterSeriesPublic:
    """Return the session's samples as time series, one per measurand.

    A series holds one measurand at one phase and location, its times and
    values in two arrays, oldest first: ready to plot. At most ``limit``
    samples in all, the oldest; ``truncated`` says whether more exist.
    """
    row = await _get_session(db, session_id)
    assert row.id is not None
    samples = list(
        await db.exec(
            select(MeterValue)
            .where(*_samples_of(row, measurand))
            .order_by(col(MeterValue.sampled_at), col(MeterValue.id))
            .limit(limit + 1)
        )
    )

    series: dict[tuple[str, str, str, str], MeterSeries] = {}
    for sample in samples[:limit]:
        key = (sample.measurand, sample.phase, sample.location, sample.unit)
        one = series.get(key)
        if one is None:
            one = series[key] = MeterSeries(
                measurand=sample.measurand,
                phase=sample.phase,
                location=sample.location,
                unit=sample.unit,
                sampled_at=[],
                values=[],
            )
        one.sampled_at.append(sample.sampled_at)
        one.values.append(sample.value)
    return MeterSeriesPublic(
        session_id=row.id,
        series=[series[key] for key in sorted(series)],
        truncated=len(samples) > limit,
    )


@router.post(
    "/{session_id}/stop",
    responses=documented(401, 403, 404, 409, 501, 502, 503, 504),
)
async def stop_session(
    session_id: BigId,
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
