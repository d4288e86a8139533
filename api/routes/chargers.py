"""Chargers: registration, connectors and live status, passwords, remote starts.

A charger is deleted outright, with its connectors and stored device model;
its sessions, CDRs and events stay, under its id. A charger still connected
keeps its connection until it drops: the next connect is refused as unknown.
"""

import asyncio
import logging
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import AfterValidator
from sqlalchemy import ColumnElement, delete, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.service import RPCError

from api.charger_commands import run_command
from api.commands import check_answer, execute_update, unavailable_from
from api.deps import (
    ChargerPath,
    Limit,
    Offset,
    OperatorDep,
    SessionDep,
    SettingsDep,
    TemporalDep,
    TextQuery,
    ViewerDep,
)
from api.models import (
    ChargerCreate,
    ChargerPage,
    ChargerPasswordPublic,
    ChargerPasswordSet,
    ChargerPublic,
    ChargerUpdate,
    ConnectorPublic,
    RemoteStartCreate,
    RemoteStartPublic,
    no_nul,
)
from api.paging import sorting
from api.problems import ProblemError, documented, invalid_field
from api.temporal_link import TemporalLink
from bus.contract import CommandOutcome, OcppCall, OcppVersion, RegistrationStatus
from moovolt.auth import hash_password
from moovolt.settings import Settings
from store.models import (
    Charger,
    Connector,
    DeviceVariable,
    Operator,
    Session,
    Tariff,
)
from store.sessions import reserve_remote_session, session_input
from workflows.types import (
    CHARGE_SESSION,
    REMOTE_START_RESULT,
    SessionState,
    session_search_attributes,
)

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/chargers", tags=["chargers"])

# A charger's answers that mean it took a new password.
TAKEN = frozenset({"Accepted", "RebootRequired"})
# Profiles whose chargers authenticate with an HTTP Basic password.
PASSWORD_PROFILES = frozenset({1, 2})
# Sessions in these states are over for their workflow; any other is running.
FINISHED = frozenset(
    {
        SessionState.REMOTE_START_REJECTED,
        SessionState.NEVER_STARTED,
        SessionState.BILLED,
        SessionState.PAYMENT_DECLINED,
    }
)

SORT = sorting(
    {
        "id": col(Charger.id),
        "created_at": col(Charger.created_at),
        "last_seen_at": col(Charger.last_seen_at),
        "vendor": col(Charger.vendor),
        "registration_status": col(Charger.registration_status),
    },
    default="id",
    tiebreak=col(Charger.id),
)
IdPrefix = Annotated[
    str | None,
    Query(max_length=48, description="Only chargers whose id starts with this."),
    AfterValidator(no_nul),
]


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
            "has_password": charger.password_hash is not None,
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


async def charger_page(
    db: AsyncSession,
    where: list[ColumnElement[bool]],
    order: list[Any],
    *,
    limit: int,
    offset: int,
) -> ChargerPage:
    """Return one page of the chargers matching ``where``, with connectors."""
    total = (
        await db.exec(select(func.count()).select_from(Charger).where(*where))
    ).one()
    chargers = list(
        await db.exec(
            select(Charger).where(*where).order_by(*order).limit(limit).offset(offset)
        )
    )
    connectors = await _connectors_of(db, [c.id for c in chargers])
    return ChargerPage(
        items=[_public(c, connectors[c.id]) for c in chargers],
        total=total,
        limit=limit,
        offset=offset,
    )


async def _get_charger(db: AsyncSession, charger_id: str) -> Charger:
    charger = await db.get(Charger, charger_id)
    if charger is None:
        raise ProblemError(404, "Not Found", f"No charger {charger_id}.")
    return charger


async def _check_tariff(db: AsyncSession, tariff_id: int | None) -> None:
    if tariff_id is not None and await db.get(Tariff, tariff_id) is None:
        raise invalid_field("tariff_id", f"there is no tariff {tariff_id}")


@router.get("", responses=documented(401, 403))
async def list_chargers(
    db: SessionDep,
    _: ViewerDep,
    order: Annotated[list[Any], Depends(SORT)],
    connected: bool | None = None,
    ocpp_version: OcppVersion | None = None,
    registration_status: RegistrationStatus | None = None,
    vendor: Annotated[TextQuery, Query(description="Case-insensitive.")] = None,
    tariff_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    q: IdPrefix = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> ChargerPage:
    """List chargers with their connectors' last status, by id unless sorted."""
    where: list[ColumnElement[bool]] = []
    if connected is not None:
        where.append(col(Charger.connected) == connected)
    if ocpp_version is not None:
        where.append(col(Charger.ocpp_version) == ocpp_version.value)
    if registration_status is not None:
        where.append(col(Charger.registration_status) == registration_status.value)
    if vendor is not None:
        where.append(func.lower(col(Charger.vendor)) == vendor.lower())
    if tariff_id is not None:
        where.append(col(Charger.tariff_id) == tariff_id)
    if q:
        where.append(col(Charger.id).startswith(q, autoescape=True))
    return await charger_page(db, where, order, limit=limit, offset=offset)


@router.post("", status_code=201, responses=documented(401, 403, 409))
async def create_charger(
    body: ChargerCreate, response: Response, db: SessionDep, operator: OperatorDep
) -> ChargerPublic:
    """Register a charger, so that it may connect and boot.

    Profiles 1 and 2 need a password; the gateway checks it at each connect.
    """
    if await db.get(Charger, body.id) is not None:
        raise ProblemError(
            409,
            "charger exists",
            f"Charger {body.id} is registered already.",
            kind="charger-exists",
        )
    if body.security_profile in PASSWORD_PROFILES and body.password is None:
        raise invalid_field("password", "security profiles 1 and 2 need a password")
    await _check_tariff(db, body.tariff_id)

    charger = Charger(
        id=body.id,
        registration_status=body.registration_status.value,
        security_profile=body.security_profile,
        tariff_id=body.tariff_id,
        password_hash=(
            await asyncio.to_thread(hash_password, body.password)
            if body.password
            else None
        ),
    )
    db.add(charger)
    await db.commit()
    logger.info(
        "charger registered", extra={"charger_id": body.id, "by": operator.name}
    )
    response.headers["Location"] = f"/api/v1/chargers/{body.id}"
    return _public(charger, [])


@router.get("/{charger_id}", responses=documented(401, 403, 404))
async def get_charger(
    charger_id: ChargerPath, db: SessionDep, _: ViewerDep
) -> ChargerPublic:
    """Return one charger with its connectors."""
    charger = await _get_charger(db, charger_id)
    connectors = await _connectors_of(db, [charger_id])
    return _public(charger, connectors[charger_id])


@router.patch("/{charger_id}", responses=documented(401, 403, 404, 409))
async def update_charger(
    charger_id: ChargerPath, body: ChargerUpdate, db: SessionDep, operator: OperatorDep
) -> ChargerPublic:
    """Change a charger's registration, security profile or tariff.

    A new registration status answers its next BootNotification, a profile
    its next connection; sessions running keep the tariff they started with.
    """
    charger = await _get_charger(db, charger_id)
    changes = body.model_dump(exclude_unset=True)
    if "tariff_id" in changes:
        await _check_tariff(db, changes["tariff_id"])
    if (
        changes.get("security_profile") in PASSWORD_PROFILES
        and charger.password_hash is None
    ):
        raise ProblemError(
            409,
            "password needed",
            "Security profiles 1 and 2 need a password: set one first.",
            kind="password-needed",
        )

    for field, value in changes.items():
        setattr(charger, field, value)
    db.add(charger)
    await db.commit()
    logger.info(
        "charger changed: %s",
        ", ".join(sorted(changes)) or "nothing",
        extra={"charger_id": charger_id, "by": operator.name},
    )
    connectors = await _connectors_of(db, [charger_id])
    return _public(charger, connectors[charger_id])


@router.delete(
    "/{charger_id}", status_code=204, responses=documented(401, 403, 404, 409)
)
async def delete_charger(
    charger_id: ChargerPath, db: SessionDep, operator: OperatorDep
) -> None:
    """Delete a charger; its sessions, CDRs and events stay.

    Refused while one of its sessions runs. A charger still connected keeps
    its connection until it drops, and is then refused as unknown.
    """
    await _get_charger(db, charger_id)
    running = await db.exec(
        select(Session.id)
        .where(
            col(Session.charger_id) == charger_id,
            col(Session.state).not_in([state.value for state in FINISHED]),
        )
        .limit(1)
    )
    session_id = running.first()
    if session_id is not None:
        raise ProblemError(
            409,
            "session running",
            f"Charger {charger_id} has a running session ({session_id}).",
            kind="session-running",
            session_id=session_id,
        )

    for table in (Connector, DeviceVariable):
        await db.exec(delete(table).where(col(table.charger_id) == charger_id))
    await db.exec(delete(Charger).where(col(Charger.id) == charger_id))
    await db.commit()
    logger.info(
        "charger deleted", extra={"charger_id": charger_id, "by": operator.name}
    )


@router.post(
    "/{charger_id}/password", responses=documented(401, 403, 404, 409, 502, 503, 504)
)
async def set_charger_password(
    charger_id: ChargerPath,
    body: ChargerPasswordSet,
    db: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    operator: OperatorDep,
) -> ChargerPasswordPublic:
    """Set or rotate the HTTP Basic password a charger connects with.

    Only its argon2 hash is kept; a password made here (40 hex characters,
    fit for both OCPP versions) is shown in the answer, once. With ``push``
    (the default) the charger gets it first (1.6 ``AuthorizationKey``, 2.0.1
    ``SecurityCtrlr.BasicAuthPassword``, redacted in the command audit) and
    it is kept only if the charger accepts: a charger that refuses or is
    offline keeps its old password, and so does the CSMS. From then on the
    old password is refused at connect.
    """
    charger = await _get_charger(db, charger_id)
    password = body.password or secrets.token_hex(20)
    answer = None
    if body.push:
        answer = await _push_password(temporal, settings, operator, charger, password)

    charger.password_hash = await asyncio.to_thread(hash_password, password)
    db.add(charger)
    await db.commit()
    logger.info(
        "charger password set", extra={"charger_id": charger_id, "by": operator.name}
    )
    return ChargerPasswordPublic(
        charger_id=charger_id,
        password=None if body.password else password,
        charger_status=answer,
    )


async def _push_password(
    temporal: TemporalLink,
    settings: Settings,
    operator: Operator,
    charger: Charger,
    password: str,
) -> str:
    """Give ``password`` to the charger; return its answer if it took it.

    Raises:
        ProblemError: the charger is offline, silent, or did not accept it.
    """
    if charger.ocpp_version == OcppVersion.V201:
        call = OcppCall(
            action="SetVariables",
            payload={
                "setVariableData": [
                    {
                        "component": {"name": "SecurityCtrlr"},
                        "variable": {"name": "BasicAuthPassword"},
                        "attributeValue": password,
                    }
                ]
            },
        )
    else:
        call = OcppCall(
            action="ChangeConfiguration",
            payload={"key": "AuthorizationKey", "value": password},
        )
    workflow_id, result = await run_command(
        temporal, settings, operator, charger.id, call
    )
    status = result.status
    if call.action == "SetVariables":
        results = result.payload.get("setVariableResult") or [{}]
        status = results[0].get("attributeStatus")
    if result.outcome is not CommandOutcome.ANSWERED or status not in TAKEN:
        check_answer(
            result.model_copy(update={"status": status}), workflow_id=workflow_id
        )
    assert status is not None
    return status


@router.post(
    "/{charger_id}/remote-start",
    status_code=201,
    responses=documented(401, 403, 404, 409, 501, 502, 503, 504),
)
async def remote_start(
    charger_id: ChargerPath,
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
