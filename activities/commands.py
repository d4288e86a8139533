"""Sending commands to chargers from workflows.

``send_command`` publishes the command and returns without a result: the
activity completes asynchronously when the gateway's ``CommandResult``
comes back through ``activities.results``. The task token travels with the
command, so the answer finds the activity even after a worker restart.
"""

import base64
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.types import SEND_COMMAND, CommandRequest
from bus.amqp import BusClient, ChargerOffline
from bus.contract import Command, CommandEnvelope, CommandResult, OcppCall, utcnow
from store.models import CommandAudit

OFFLINE = "offline"
SECRET = "<redacted>"
# 1.6 configuration keys and 2.0.1 variables whose values are credentials.
SECRET_NAMES = ("AuthorizationKey", "BasicAuthPassword")


def redacted(command: Command) -> dict[str, Any]:
    """Return the command as audited: a credential it sets is not kept."""
    dumped: dict[str, Any] = command.model_dump(mode="json")
    if not isinstance(command, OcppCall):
        return dumped
    payload = dumped["payload"]
    if command.action == "ChangeConfiguration" and payload.get("key") in SECRET_NAMES:
        payload["value"] = SECRET
    if command.action == "SetVariables":
        for item in payload.get("setVariableData", ()):
            if item.get("variable", {}).get("name") in SECRET_NAMES:
                item["attributeValue"] = SECRET
    return dumped


class CommandActivities:
    """Activities that talk to chargers through the bus.

    Args:
        bus: an open bus client.
        db: the process's session factory, for the command audit.
    """

    def __init__(self, bus: BusClient, db: async_sessionmaker[AsyncSession]) -> None:
        self._bus = bus
        self._db = db

    @activity.defn(name=SEND_COMMAND)
    async def send_command(self, request: CommandRequest) -> CommandResult:
        """Audit and publish a command; complete when the charger answers.

        Raises:
            ApplicationError: ``ChargerOffline`` (non-retryable) when no
                gateway holds the charger.
        """
        info = activity.info()
        envelope = CommandEnvelope(
            command_id=request.command_id,
            charger_id=request.charger_id,
            task_token=base64.b64encode(info.task_token).decode(),
            command=request.command,
        )
        await self._audit(request)

        try:
            await self._bus.publish_command(
                request.charger_id,
                envelope.model_dump_json().encode(),
                correlation_id=request.command_id,
            )
        except ChargerOffline as exc:
            await self._mark_offline(request.command_id)
            raise ApplicationError(
                f"charger {request.charger_id} is offline",
                type="ChargerOffline",
                non_retryable=True,
            ) from exc

        activity.logger.info("%s sent to %s", request.command.kind, request.charger_id)
        activity.raise_complete_async()

    async def _audit(self, request: CommandRequest) -> None:
        async with self._db() as db:
            await db.exec(
                insert(CommandAudit)
                .values(
                    id=request.command_id,
                    charger_id=request.charger_id,
                    command=request.command.kind,
                    payload=redacted(request.command),
                    requested_by=request.requested_by,
                    created_at=utcnow(),
                )
                .on_conflict_do_nothing(index_elements=["id"])
            )
            await db.commit()

    async def _mark_offline(self, command_id: str) -> None:
        async with self._db() as db:
            await db.exec(
                update(CommandAudit)
                .where(col(CommandAudit.id) == command_id)
                .values(outcome=OFFLINE, completed_at=utcnow())
            )
            await db.commit()
