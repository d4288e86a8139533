"""A charger's settings: the 2.0.1 device model and 1.6 configuration keys.

Each command runs as a ``ChargerCommand`` workflow of its own (id
``command-<uuid>``), which sends it through the audited ``send_command``
activity; the route waits for the charger's answer and turns it into an HTTP
answer, as remote starts do. The device model itself is stored by the SG from
the charger's NotifyReports; a SetVariables the charger accepts updates the
stored value here.
"""

import logging
import secrets
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body
from pydantic import TypeAdapter
from sqlalchemy import update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from api.charger_commands import (
    ItemT,
    charger_speaking,
    parse_answer,
    require_answer,
    run_command,
)
from api.commands import check_answer
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
    ComponentRef,
    ConfigurationChange,
    ConfigurationChangePublic,
    ConfigurationGet,
    ConfigurationKey,
    ConfigurationPublic,
    DeviceVariablePage,
    DeviceVariablePublic,
    ReportCreate,
    ReportPublic,
    VariableGet,
    VariableGetResult,
    VariableRef,
    VariableSet,
    VariableSetResult,
    VariablesGetPublic,
    VariablesSetPublic,
)
from api.paging import fetch_page
from api.problems import documented
from api.temporal_link import TemporalLink
from bus.contract import CommandOutcome, OcppCall, OcppVersion, utcnow
from moovolt.settings import Settings
from store.models import DeviceVariable, Operator

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/chargers", tags=["chargers"])

COMMAND_ERRORS = documented(401, 403, 404, 409, 501, 502, 503, 504)
# Items of one GetVariables / SetVariables; a charger may accept fewer
# (its ItemsPerMessage) and then answers with a CALLERROR.
MAX_ITEMS = 100
# 1.6 ChangeConfiguration answers that mean the value was taken.
CHANGED = frozenset({"Accepted", "RebootRequired"})
# component, instance, evse, connector, variable, instance, attribute type
AttributeKey = tuple[str, str, int, int, str, str, str]


async def _variables_call(
    db: AsyncSession,
    temporal: TemporalLink,
    settings: Settings,
    operator: Operator,
    charger_id: str,
    verb: Literal["Get", "Set"],
    items: Sequence[VariableGet | VariableSet],
    result_model: type[ItemT],
) -> tuple[str, list[ItemT]]:
    """Send a 2.0.1 Get/SetVariables; return its workflow id and the results."""
    await charger_speaking(db, charger_id, OcppVersion.V201)
    call = OcppCall(
        action=f"{verb}Variables", payload={f"{verb.lower()}VariableData": _ocpp(items)}
    )
    workflow_id, result = await run_command(
        temporal, settings, operator, charger_id, call
    )
    require_answer(result, workflow_id=workflow_id)
    results = parse_answer(
        TypeAdapter(list[result_model]),  # type: ignore[valid-type]
        result,
        f"{verb.lower()}VariableResult",
        workflow_id=workflow_id,
    )
    return workflow_id, results


def _ocpp(items: Sequence[VariableGet | VariableSet]) -> list[dict[str, Any]]:
    return [
        item.model_dump(mode="json", by_alias=True, exclude_none=True) for item in items
    ]


def _key(
    component: ComponentRef, variable: VariableRef, attribute_type: str | None
) -> AttributeKey:
    evse = component.evse
    return (
        component.name,
        component.instance or "",
        evse.id if evse else 0,
        (evse.connector_id or 0) if evse else 0,
        variable.name,
        variable.instance or "",
        attribute_type or "Actual",
    )


async def _store_accepted(
    db: AsyncSession,
    charger_id: str,
    asked: list[VariableSet],
    results: list[VariableSetResult],
) -> int:
    """Write the values the charger accepted into its stored device model.

    Only attributes the charger has reported are updated, and never the value
    of a WriteOnly one (a password, say): the next report brings the rest.

    Returns:
        How many stored attributes changed.
    """
    values = {_key(a.component, a.variable, a.attribute_type): a for a in asked}
    stored = 0
    for result in results:
        key = _key(result.component, result.variable, result.attribute_type)
        if result.attribute_status != "Accepted" or key not in values:
            continue
        component, instance, evse, connector, variable, var_instance, kind = key
        changed = await db.exec(
            update(DeviceVariable)
            .where(
                col(DeviceVariable.charger_id) == charger_id,
                col(DeviceVariable.component) == component,
                col(DeviceVariable.component_instance) == instance,
                col(DeviceVariable.evse_id) == evse,
                col(DeviceVariable.connector_id) == connector,
                col(DeviceVariable.variable) == variable,
                col(DeviceVariable.variable_instance) == var_instance,
                col(DeviceVariable.attribute_type) == kind,
                col(DeviceVariable.mutability).is_distinct_from("WriteOnly"),
            )
            .values(value=values[key].attribute_value, reported_at=utcnow())
        )
        stored += changed.rowcount
    await db.commit()
    return stored


# -- OCPP 2.0.1: the device model ------------------------------------------------


@router.get("/{charger_id}/variables", responses=documented(401, 403, 404, 409))
async def list_variables(
    charger_id: str,
    db: SessionDep,
    _: ViewerDep,
    component: str | None = None,
    variable: str | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> DeviceVariablePage:
    """List the stored device model of a 2.0.1 charger, one row per attribute."""
    await charger_speaking(db, charger_id, OcppVersion.V201)
    where = [col(DeviceVariable.charger_id) == charger_id]
    if component is not None:
        where.append(col(DeviceVariable.component) == component)
    if variable is not None:
        where.append(col(DeviceVariable.variable) == variable)
    order = [
        col(DeviceVariable.component),
        col(DeviceVariable.component_instance),
        col(DeviceVariable.evse_id),
        col(DeviceVariable.connector_id),
        col(DeviceVariable.variable),
        col(DeviceVariable.variable_instance),
        col(DeviceVariable.attribute_type),
    ]
    total, rows = await fetch_page(
        db, DeviceVariable, where, order, limit=limit, offset=offset
    )
    return DeviceVariablePage(
        items=[DeviceVariablePublic.model_validate(row) for row in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.post(
    "/{charger_id}/variables/get",
    responses=COMMAND_ERRORS,
    response_model_exclude_none=True,
)
async def get_variables(
    charger_id: str,
    body: Annotated[list[VariableGet], Body(min_length=1, max_length=MAX_ITEMS)],
    db: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    operator: OperatorDep,
) -> VariablesGetPublic:
    """Read attributes of a 2.0.1 charger's variables (GetVariables).

    Answers with the charger's result for each attribute, as it gave them.
    """
    workflow_id, results = await _variables_call(
        db, temporal, settings, operator, charger_id, "Get", body, VariableGetResult
    )
    return VariablesGetPublic(workflow_id=workflow_id, results=results)


@router.post(
    "/{charger_id}/variables/set",
    responses=COMMAND_ERRORS,
    response_model_exclude_none=True,
)
async def set_variables(
    charger_id: str,
    body: Annotated[list[VariableSet], Body(min_length=1, max_length=MAX_ITEMS)],
    db: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    operator: OperatorDep,
) -> VariablesSetPublic:
    """Write attributes of a 2.0.1 charger's variables (SetVariables).

    Answers with the charger's result for each attribute. The stored device
    model takes the values the charger accepted.
    """
    workflow_id, results = await _variables_call(
        db, temporal, settings, operator, charger_id, "Set", body, VariableSetResult
    )
    stored = await _store_accepted(db, charger_id, body, results)
    return VariablesSetPublic(workflow_id=workflow_id, results=results, stored=stored)


@router.post("/{charger_id}/reports", status_code=202, responses=COMMAND_ERRORS)
async def request_report(
    charger_id: str,
    body: ReportCreate,
    db: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    operator: OperatorDep,
) -> ReportPublic:
    """Ask a 2.0.1 charger for a base report of its device model.

    Accepted means the charger will send the report (NotifyReport, tagged
    with ``request_id``); the SG stores it as the charger's device model.
    Any other answer is a 409 problem carrying it.
    """
    await charger_speaking(db, charger_id, OcppVersion.V201)
    request_id = secrets.randbelow(2**31 - 1) + 1
    call = OcppCall(
        action="GetBaseReport",
        payload={"requestId": request_id, "reportBase": body.report_base},
    )
    workflow_id, result = await run_command(
        temporal, settings, operator, charger_id, call
    )
    ids: dict[str, Any] = {"request_id": request_id, "workflow_id": workflow_id}
    check_answer(result, **ids)

    return ReportPublic(
        **ids, outcome=result.outcome, status=result.status, payload=result.payload
    )


# -- OCPP 1.6: configuration keys ------------------------------------------------


@router.post("/{charger_id}/configuration/get", responses=COMMAND_ERRORS)
async def get_configuration(
    charger_id: str,
    db: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    operator: OperatorDep,
    body: Annotated[ConfigurationGet | None, Body()] = None,
) -> ConfigurationPublic:
    """Read configuration keys of a 1.6 charger (GetConfiguration)."""
    await charger_speaking(db, charger_id, OcppVersion.V16)
    keys = body.key if body is not None else None
    call = OcppCall(action="GetConfiguration", payload={"key": keys} if keys else {})
    workflow_id, result = await run_command(
        temporal, settings, operator, charger_id, call
    )
    require_answer(result, workflow_id=workflow_id)

    known = parse_answer(
        TypeAdapter(list[ConfigurationKey]),
        result,
        "configurationKey",
        workflow_id=workflow_id,
    )
    unknown = parse_answer(
        TypeAdapter(list[str]), result, "unknownKey", workflow_id=workflow_id
    )
    return ConfigurationPublic(
        workflow_id=workflow_id, configuration_key=known, unknown_key=unknown
    )


@router.post("/{charger_id}/configuration/change", responses=COMMAND_ERRORS)
async def change_configuration(
    charger_id: str,
    body: ConfigurationChange,
    db: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    operator: OperatorDep,
) -> ConfigurationChangePublic:
    """Set one configuration key of a 1.6 charger (ChangeConfiguration).

    Accepted and RebootRequired are answers; any other is a 409 problem.
    """
    await charger_speaking(db, charger_id, OcppVersion.V16)
    call = OcppCall(
        action="ChangeConfiguration", payload={"key": body.key, "value": body.value}
    )
    workflow_id, result = await run_command(
        temporal, settings, operator, charger_id, call
    )
    if result.outcome is not CommandOutcome.ANSWERED or result.status not in CHANGED:
        check_answer(result, workflow_id=workflow_id)

    return ConfigurationChangePublic(
        workflow_id=workflow_id,
        outcome=result.outcome,
        status=result.status,
        payload=result.payload,
    )
