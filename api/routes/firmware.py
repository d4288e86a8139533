"""Firmware updates and log uploads: a workflow each, one at a time per charger.

``POST`` starts the ``FirmwareUpdate`` (id ``firmware-<charger>``) or
``LogUpload`` (``log-<charger>``) workflow and answers with the charger's
answer to the command (202: the work goes on at the charger); the workflow
then follows the charger's status notifications to a final status or its
deadline. ``GET`` shows the latest one, running or ended.
"""

import logging
import secrets
from datetime import timedelta
from typing import Any

from fastapi import APIRouter

from api.commands import execute_update
from api.deps import OperatorDep, SessionDep, SettingsDep, TemporalDep, ViewerDep
from api.operation_models import (
    FirmwareUpdateCreate,
    LogUploadCreate,
    OperationPublic,
)
from api.problems import documented
from api.routes.commands import (
    COMMAND_ERRORS,
    charger_version,
    check_status,
    read_view,
    start_operation,
)
from api.temporal_link import TemporalLink
from bus.contract import OcppCall, OcppVersion, utcnow
from moovolt.settings import Settings
from store.models import Operator
from workflows.operation_types import (
    ANSWER,
    FIRMWARE_UPDATE,
    LOG_UPLOAD,
    OPERATION_ACCEPTED,
    OperationInput,
    OperationView,
    firmware_workflow_id,
    log_workflow_id,
)

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/chargers", tags=["chargers"])

# An operation's workflow is gone this long after its deadline at the latest.
RUN_MARGIN = timedelta(hours=1)
VIEW_ERRORS = documented(401, 403, 404, 502, 503)


async def _start(
    temporal: TemporalLink,
    settings: Settings,
    operator: Operator,
    *,
    workflow: str,
    workflow_id: str,
    charger_id: str,
    input: OperationInput,
) -> OperationPublic:
    """Start the operation; answer once the charger took it on.

    Raises:
        ProblemError: already running, offline or refused (409), silent
            (504), Temporal away (503).
    """
    logger.info(
        "%s requested",
        input.command.action,
        extra={
            "charger_id": charger_id,
            "workflow_id": workflow_id,
            "by": operator.name,
        },
    )
    handle = await start_operation(
        temporal,
        settings,
        workflow,
        input,
        workflow_id=workflow_id,
        charger_id=charger_id,
        result_type=OperationView,
        run_timeout=input.deadline - utcnow() + RUN_MARGIN,
    )
    ids: dict[str, Any] = {"workflow_id": workflow_id, "request_id": input.request_id}
    result = await execute_update(
        handle,
        ANSWER,
        charger_id=charger_id,
        timeout_s=settings.call_timeout_s,
        extra=ids,
    )
    check_status(result, OPERATION_ACCEPTED, **ids)
    return OperationPublic.of(await read_view(handle, OperationView), workflow_id)


def _request_id(version: OcppVersion) -> int | None:
    """Return a fresh 2.0.1 requestId; 1.6 has none."""
    if version is OcppVersion.V16:
        return None
    return secrets.randbelow(2**31 - 1) + 1


@router.post("/{charger_id}/firmware", status_code=202, responses=COMMAND_ERRORS)
async def update_firmware(
    charger_id: str,
    body: FirmwareUpdateCreate,
    db: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    operator: OperatorDep,
) -> OperationPublic:
    """Have the charger download and install firmware (UpdateFirmware).

    The update is followed through the charger's FirmwareStatusNotifications
    until Installed (Succeeded), a failure, or ``timeout_s`` after the later
    of ``retrieve_at`` and ``install_at``. One at a time per charger: 409
    while one runs.
    """
    version = await charger_version(db, charger_id)
    now = utcnow()
    request_id = _request_id(version)
    call: OcppCall = body.call(version, request_id, now)
    input = OperationInput(
        charger_id=charger_id,
        command=call,
        requested_by=operator.name,
        request_id=request_id,
        deadline=body.deadline(body.start(now)),
    )
    return await _start(
        temporal,
        settings,
        operator,
        workflow=FIRMWARE_UPDATE,
        workflow_id=firmware_workflow_id(charger_id),
        charger_id=charger_id,
        input=input,
    )


@router.get("/{charger_id}/firmware", responses=VIEW_ERRORS)
async def get_firmware_update(
    charger_id: str, temporal: TemporalDep, _: ViewerDep
) -> OperationPublic:
    """Return the charger's latest firmware update, running or ended."""
    client = await temporal.client()
    handle = client.get_workflow_handle(
        firmware_workflow_id(charger_id), result_type=OperationView
    )
    return OperationPublic.of(await read_view(handle, OperationView), handle.id)


@router.post("/{charger_id}/logs", status_code=202, responses=COMMAND_ERRORS)
async def upload_log(
    charger_id: str,
    body: LogUploadCreate,
    db: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    operator: OperatorDep,
) -> OperationPublic:
    """Have the charger upload a log to ``location`` (1.6 GetDiagnostics,
    2.0.1 GetLog).

    The upload is followed through the charger's DiagnosticsStatusNotifications
    (1.6) or LogStatusNotifications (2.0.1) until Uploaded (Succeeded), a
    failure, or ``timeout_s``. One at a time per charger: 409 while one runs.
    """
    version = await charger_version(db, charger_id)
    request_id = _request_id(version)
    input = OperationInput(
        charger_id=charger_id,
        command=body.call(version, request_id),
        requested_by=operator.name,
        request_id=request_id,
        deadline=body.deadline(utcnow()),
    )
    return await _start(
        temporal,
        settings,
        operator,
        workflow=LOG_UPLOAD,
        workflow_id=log_workflow_id(charger_id),
        charger_id=charger_id,
        input=input,
    )


@router.get("/{charger_id}/logs", responses=VIEW_ERRORS)
async def get_log_upload(
    charger_id: str, temporal: TemporalDep, _: ViewerDep
) -> OperationPublic:
    """Return the charger's latest log upload, running or ended."""
    client = await temporal.client()
    handle = client.get_workflow_handle(
        log_workflow_id(charger_id), result_type=OperationView
    )
    return OperationPublic.of(await read_view(handle, OperationView), handle.id)
