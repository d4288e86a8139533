"""Chargers: their connectors and live status, and remote starts."""

import logging

from fastapi import APIRouter, Response
from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
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
    ChargerPage,
    ChargerPublic,
    ConnectorPublic,
    RemoteStartCreate,
    RemoteStartPublic,
)
from api.problems import ProblemError, documented
from store.models import Charger, Connector
from store.sessions import reserve_remote_session, session_input
from workflows.types import (
    CHARGE_SESSION,
    REMOTE_START_RESULT,
    SessionState,
    session_search_attributes,
)

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/chargers", tags=["chargers"])


def _public(charger: Charger, connectors: list[Connector]) -> ChargerPublic:
    own = next((c for c in connectors if c.connector_id == 0), None)
    if not charger.connected:
        status = "Offline"
    elif own is not None:
        status = own.status
    else:
        status = "Online"
    return ChargerPublic.model_validate(
        {
            **charger.model_dump(),
            "status": status,
            "connectors": [ConnectorPublic.model_validate(c) for c in connectors],
        }
    )


async def _connectors_of(
    db: AsyncSession, charger_ids: list[str]
) -> dict[str, list[Connector]]:
    found = await db.exec(
        select(Connector)
        .where(col(Connector.charger_id).in_(charger_ids))
        .order_by(
            col(Connector.charger_id),
            col(Connector.connector_id),
            col(Connector.evse_connector_id),
        )
    )
    by_charger: dict[str, list[Connector]] = {id_: [] for id_ in charger_ids}
    for connector in found:
        by_charger[connector.charger_id].append(connector)
    return by_charger


async def _get_charger(db: AsyncSession, charger_id: str) -> Charger:
    charger = await db.get(Charger, charger_id)
    if charger is None:
        raise ProblemError(404, "Not Found", f"No charger {charger_id}.")
    return charger


@router.get("", responses=documented(401, 403))
async def list_chargers(
    db: SessionDep, _: ViewerDep, limit: Limit = 50, offset: Offset = 0
) -> ChargerPage:
    """List chargers by id, with their connectors' last status."""
    total = (await db.exec(select(func.count()).select_from(Charger))).one()
    chargers = list(
        await db.exec(
            select(Charger).order_by(col(Charger.id)).limit(limit).offset(offset)
        )
    )
    connectors = await _connectors_of(db, [c.id for c in chargers])
    return ChargerPage(
        items=[_public(c, connectors[c.id]) for c in chargers],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/{charger_id}", responses=documented(401, 403, 404))
async def get_charger(charger_id: str, db: SessionDep, _: ViewerDep) -> ChargerPublic:
    """Return one charger with its connectors."""
    charger = await _get_charger(db, charger_id)
    connectors = await _connectors_of(db, [charger_id])
    return _public(charger, connectors[charger_id])


@router.post(
    "/{charger_id}/remote-start",
    status_code=201,
    responses=documented(401, 403, 404, 409, 501, 502, 503, 504),
)
async def remote_start(
    charger_id: str,
    body: RemoteStartCreate,
    response: Response,
    db: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    operator: OperatorDep,
) -> RemoteStartPublic:
    """Ask a charger to start a session for an id token.

    The session's workflow sends the command; this answers with the charger's
    answer. An offline charger or a refusal is a 409 problem, a charger that
    does not answer a 504; both still carry the session's ids.
    """
    await _get_charger(db, charger_id)
    client = await temporal.client()

    row = await reserve_remote_session(
        db,
        charger_id=charger_id,
        connector_id=body.connector_id,
        id_token=body.id_token,
    )
    assert row.id is not None and row.transaction_id is not None
    ids = {
        "session_id": row.id,
        "transaction_id": row.transaction_id,
        "workflow_id": row.workflow_id,
    }
    logger.info(
        "remote start requested",
        extra={"charger_id": charger_id, "session_id": row.id, "by": operator.name},
    )

    try:
        handle = await client.start_workflow(
            CHARGE_SESSION,
            session_input(row, settings),
            id=row.workflow_id,
            task_queue=settings.temporal_task_queue,
            search_attributes=session_search_attributes(
                charger_id, body.id_token, SessionState.REMOTE_START_REQUESTED.value
            ),
        )
    except RPCError as exc:
        # No workflow will ever own this session; close it here.
        row.state = SessionState.NEVER_STARTED
        row.stop_reason = "WorkflowNotStarted"
        db.add(row)
        await db.commit()
        raise unavailable_from(exc) from exc

    result = await execute_update(
        handle,
        REMOTE_START_RESULT,
        charger_id=charger_id,
        timeout_s=settings.call_timeout_s,
        extra=ids,
    )
    check_answer(result, **ids)

    response.headers["Location"] = f"/api/v1/sessions/{row.id}"
    return RemoteStartPublic(
        **ids,
        outcome=result.outcome,
        status=result.status,
        payload=result.payload,
    )
