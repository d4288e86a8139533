"""Reservations: each one a ``Reservation`` workflow, from ReserveNow to its end.

Creating one starts the workflow (id ``reservation-<charger>-<id>``, the id
chosen here) and answers with the charger's answer to ReserveNow; the
workflow then holds the reservation until it expires, is used or is
cancelled. Lists come from Temporal's visibility (the workflows' memo
carries their view), single reservations from the workflow itself; which
charger a reservation id belongs to is read from the command audit.
"""

import logging
import secrets
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import WorkflowExecution, WorkflowHandle
from temporalio.service import RPCError

from api.command_models import invalid
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
from api.operation_models import (
    ReservationCreate,
    ReservationPage,
    ReservationPublic,
    cancel_call,
)
from api.problems import ProblemError, documented
from api.routes.commands import (
    COMMAND_ERRORS,
    charger_version,
    read_view,
    start_operation,
)
from bus.contract import utcnow
from workflows.operation_types import (
    ANSWER,
    CANCEL,
    RESERVATION,
    CancelRequest,
    ReservationInput,
    ReservationState,
    ReservationView,
    reservation_workflow_id,
)

logger = logging.getLogger(__name__)

router = APIRouter()

# A reservation's workflow is gone this long after its expiry at the latest.
RUN_MARGIN = timedelta(hours=1)
# Charger ids that can stand in a visibility query as they are.
LISTABLE_ID = r"^[^'\"\\\x00-\x1f]+$"

_RESERVED_AT = text(
    "SELECT charger_id FROM command_audit"
    " WHERE command = 'ocpp_call' AND payload->>'action' = 'ReserveNow'"
    " AND COALESCE(payload->'payload'->>'reservationId', payload->'payload'->>'id')"
    " = :reservation_id"
    " ORDER BY created_at DESC LIMIT 1"
)


async def _charger_of(db: AsyncSession, reservation_id: int) -> str:
    """Return the charger a reservation was made at, from the command audit.

    Raises:
        ProblemError: 404 when no ReserveNow carried ``reservation_id``.
    """
    found = await db.exec(  # type: ignore[call-overload]
        _RESERVED_AT, params={"reservation_id": str(reservation_id)}
    )
    charger_id: str | None = found.scalar_one_or_none()
    if charger_id is None:
        raise ProblemError(404, "Not Found", f"No reservation {reservation_id}.")
    return charger_id


async def _handle(
    db: AsyncSession, temporal: TemporalDep, reservation_id: int
) -> WorkflowHandle[Any, ReservationView]:
    charger_id = await _charger_of(db, reservation_id)
    client = await temporal.client()
    return client.get_workflow_handle(
        reservation_workflow_id(charger_id, reservation_id),
        result_type=ReservationView,
    )


@router.post(
    "/chargers/{charger_id}/reservations",
    status_code=201,
    tags=["chargers"],
    responses=COMMAND_ERRORS,
)
async def reserve(
    charger_id: str,
    body: ReservationCreate,
    response: Response,
    db: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    operator: OperatorDep,
) -> ReservationPublic:
    """Reserve a connector for an id token until ``expires_at`` (ReserveNow).

    Answers with the reservation once the charger accepted it; a refusal is
    a 409 problem carrying the charger's answer. The reservation then ends
    Used, Cancelled or Expired (see ``GET /reservations/{id}``).
    """
    version = await charger_version(db, charger_id)
    now = utcnow()
    if body.expires_at <= now:
        raise invalid("expiresAt", "must be in the future")
    reservation_id = secrets.randbelow(2**31 - 1) + 1
    workflow_id = reservation_workflow_id(charger_id, reservation_id)
    ids: dict[str, Any] = {"reservation_id": reservation_id, "workflow_id": workflow_id}
    input = ReservationInput(
        reservation_id=reservation_id,
        charger_id=charger_id,
        connector_id=body.connector_id,
        id_token=body.id_token,
        expires_at=body.expires_at,
        reserve=body.reserve(version, reservation_id),
        cancel=cancel_call(reservation_id),
        requested_by=operator.name,
    )
    logger.info(
        "reservation requested",
        extra={"charger_id": charger_id, **ids, "by": operator.name},
    )

    handle = await start_operation(
        temporal,
        settings,
        RESERVATION,
        input,
        workflow_id=workflow_id,
        charger_id=charger_id,
        result_type=ReservationView,
        run_timeout=body.expires_at - now + RUN_MARGIN,
    )
    result = await execute_update(
        handle,
        ANSWER,
        charger_id=charger_id,
        timeout_s=settings.call_timeout_s,
        extra=ids,
    )
    check_answer(result, **ids)

    view = await read_view(handle, ReservationView)
    response.headers["Location"] = f"/api/v1/reservations/{reservation_id}"
    return ReservationPublic.of(view, workflow_id)


@router.get(
    "/reservations", tags=["reservations"], responses=documented(401, 403, 422, 503)
)
async def list_reservations(
    temporal: TemporalDep,
    _: ViewerDep,
    charger_id: Annotated[str | None, Query(pattern=LISTABLE_ID, max_length=48)] = None,
    active: bool | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> ReservationPage:
    """List reservations, newest first, from Temporal's visibility.

    ``active`` keeps those whose workflow runs (true) or has ended (false).
    A reservation shows up a moment after it is made.
    """
    query = f"WorkflowType = '{RESERVATION}'"
    if charger_id is not None:
        query += f" AND ChargerId = '{charger_id}'"
    if active is not None:
        query += " AND ExecutionStatus " + ("=" if active else "!=") + " 'Running'"
    client = await temporal.client()

    items: list[ReservationPublic] = []
    try:
        total = (await client.count_workflows(query)).count
        seen = 0
        async for execution in client.list_workflows(query, limit=offset + limit):
            seen += 1
            if seen > offset and (item := await _listed(execution)) is not None:
                items.append(item)
    except RPCError as exc:
        raise unavailable_from(exc) from exc
    return ReservationPage(items=items, total=total, limit=limit, offset=offset)


async def _listed(execution: WorkflowExecution) -> ReservationPublic | None:
    """Return the reservation a listed workflow's memo holds, if it has one."""
    memo = await execution.memo()
    view = memo.get("reservation")
    if view is None:
        return None  # its first task has not run yet
    return ReservationPublic.of(ReservationView.model_validate(view), execution.id)


@router.get(
    "/reservations/{reservation_id}",
    tags=["reservations"],
    responses=documented(401, 403, 404, 502, 503),
)
async def get_reservation(
    reservation_id: int, db: SessionDep, temporal: TemporalDep, _: ViewerDep
) -> ReservationPublic:
    """Return one reservation as its workflow knows it."""
    handle = await _handle(db, temporal, reservation_id)
    view = await read_view(handle, ReservationView)
    return ReservationPublic.of(view, handle.id)


@router.delete(
    "/reservations/{reservation_id}", tags=["reservations"], responses=COMMAND_ERRORS
)
async def cancel_reservation(
    reservation_id: int,
    db: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    operator: OperatorDep,
) -> ReservationPublic:
    """Cancel a reservation (CancelReservation).

    Answers with the reservation, Cancelled, once the charger accepted; a
    refusal is a 409 problem carrying the charger's answer, and a
    reservation that has ended already a 409 ``reservation-not-active``.
    """
    handle = await _handle(db, temporal, reservation_id)
    ids: dict[str, Any] = {"reservation_id": reservation_id, "workflow_id": handle.id}
    view = await read_view(handle, ReservationView)
    if view.state is not ReservationState.RESERVED:
        raise ProblemError(
            409,
            "reservation not active",
            f"Reservation {reservation_id} is {view.state}.",
            kind="reservation-not-active",
            state=view.state.value,
            **ids,
        )
    logger.info(
        "reservation cancel requested",
        extra={"charger_id": view.charger_id, **ids, "by": operator.name},
    )

    result = await execute_update(
        handle,
        CANCEL,
        CancelRequest(requested_by=operator.name),
        charger_id=view.charger_id,
        timeout_s=settings.call_timeout_s,
        extra=ids,
    )
    check_answer(result, **ids)

    return ReservationPublic.of(await read_view(handle, ReservationView), handle.id)
