"""Chargers' answers to commands: completing the activities that wait for them.

The gateways publish every ``CommandResult`` to the durable results queue.
The listener records the answer in the command audit, completes the
``send_command`` activity named by the result's task token and only then
acknowledges the message, so an answer survives a crash of this process.
An answer nobody waits for any more (the activity timed out, the workflow
ended) is logged and dropped.
"""

import asyncio
import base64
import binascii
import logging

from aio_pika.abc import AbstractIncomingMessage
from pydantic import ValidationError
from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from bus.amqp import QUORUM, BusClient
from bus.contract import CONTRACT_VERSION, CommandResult
from moovolt import metrics
from store.models import CommandAudit

logger = logging.getLogger(__name__)

# Temporal's answers for a task token whose activity is not waiting any more.
_GONE = frozenset({RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT})
RETRY_DELAY_S = 1.0


class CommandResultListener:
    """Consume ``topology.results`` and complete waiting ``send_command``\\ s.

    Args:
        client: the Temporal client (with the pydantic data converter).
        bus: an open bus client.
        db: the process's session factory, for the command audit.
    """

    def __init__(
        self,
        client: Client,
        bus: BusClient,
        db: async_sessionmaker[AsyncSession],
    ) -> None:
        self._client = client
        self._bus = bus
        self._db = db

    async def run(self) -> None:
        """Consume results until cancelled."""
        queue = await self._bus.channel.declare_queue(
            self._bus.topology.results, durable=True, arguments=QUORUM
        )
        logger.info("listening for command results on %s", queue.name)
        async with queue.iterator() as messages:
            async for message in messages:
                await self.handle(message)

    async def handle(self, message: AbstractIncomingMessage) -> None:
        """Process one result message and settle it with the broker."""
        try:
            result = CommandResult.model_validate_json(message.body)
        except ValidationError as exc:
            logger.warning("dropping a malformed command result: %s", exc)
            logger.debug("malformed command result", exc_info=True)
            metrics.SG_COMMAND_RESULTS.labels(metrics.UNKNOWN, "dropped").inc()
            await message.reject(requeue=False)
            return
        if result.contract > CONTRACT_VERSION:
            logger.warning(
                "dropping command result %s of contract %d",
                result.command_id,
                result.contract,
            )
            metrics.SG_COMMAND_RESULTS.labels(metrics.UNKNOWN, "dropped").inc()
            await message.reject(requeue=False)
            return

        try:
            await self._audit(result)
            await self._complete(result)
        except Exception:
            # Temporal or PostgreSQL is unavailable: try again shortly.
            logger.warning(
                "could not settle command result %s, requeueing",
                result.command_id,
                exc_info=True,
            )
            metrics.SG_COMMAND_RESULTS.labels(result.outcome.value, "requeued").inc()
            await asyncio.sleep(RETRY_DELAY_S)
            await message.nack(requeue=True)
            return
        await message.ack()

    async def _complete(self, result: CommandResult) -> None:
        extra = {"charger_id": result.charger_id, "command_id": result.command_id}
        if result.task_token is None:
            logger.info("command result without a task token", extra=extra)
            metrics.SG_COMMAND_RESULTS.labels(result.outcome.value, "dropped").inc()
            return
        try:
            token = base64.b64decode(result.task_token, validate=True)
        except binascii.Error:
            logger.warning("command result with a malformed task token", extra=extra)
            metrics.SG_COMMAND_RESULTS.labels(result.outcome.value, "dropped").inc()
            return

        handle = self._client.get_async_activity_handle(task_token=token)
        try:
            await handle.complete(result)
        except RPCError as exc:
            if exc.status not in _GONE:
                raise
            # Already completed, timed out or its workflow is gone.
            logger.info(
                "command result for an activity no longer waiting: %s",
                exc.message,
                extra=extra,
            )
            metrics.SG_COMMAND_RESULTS.labels(result.outcome.value, "gone").inc()
            return
        metrics.SG_COMMAND_RESULTS.labels(result.outcome.value, "delivered").inc()
        logger.debug("command result delivered", extra=extra)

    async def _audit(self, result: CommandResult) -> None:
        async with self._db() as db:
            await db.exec(
                update(CommandAudit)
                .where(col(CommandAudit.id) == result.command_id)
                .values(
                    outcome=result.outcome.value,
                    status=result.status,
                    result=result.model_dump(mode="json", exclude={"task_token"}),
                    completed_at=result.completed_at,
                )
            )
            await db.commit()
