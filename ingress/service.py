"""The SG's ingress: consumes charger requests and events from the bus."""

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client
from temporalio.service import RPCError

from bus.amqp import QUORUM, BusClient
from bus.contract import (
    CONTRACT_VERSION,
    DecisionEnvelope,
    DecisionError,
    EventEnvelope,
)
from ingress.decisions import Decider
from ingress.events import Batch, SignalThrottle
from moovolt.settings import Settings
from store.sessions import session_workflow_ids
from workflows.types import METER_PROGRESS, MeterProgress

logger = logging.getLogger(__name__)

BATCH_MAX = 500
BATCH_WAIT_S = 0.05
RETRY_MAX_S = 10.0


class Ingress:
    """Decide on requests (RPC) and store fire-and-forget events in batches."""

    def __init__(
        self,
        settings: Settings,
        db: async_sessionmaker[AsyncSession],
        bus: BusClient,
        temporal: Client,
    ) -> None:
        self.settings = settings
        self.db = db
        self.bus = bus
        self.temporal = temporal
        self.decider = Decider(settings, db, temporal)
        self.throttle = SignalThrottle(settings.meter_signal_interval_s)
        self._pending: list[tuple[AbstractIncomingMessage, EventEnvelope]] = []
        self._full = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Consume until cancelled."""
        topology = self.bus.topology
        decisions = await self._channel(self.settings.decision_prefetch)
        events = await self._channel(BATCH_MAX * 2)
        await (
            await decisions.declare_queue(
                topology.decisions, durable=True, arguments=QUORUM
            )
        ).consume(self._on_decision)
        await (
            await events.declare_queue(
                topology.events,
                durable=True,
                arguments=self.bus.queue_arguments(topology.events),
            )
        ).consume(self._on_event)
        logger.info("ingress consuming %s and %s", topology.decisions, topology.events)
        await self._flush_forever()

    async def _channel(self, prefetch: int) -> AbstractChannel:
        # Each consumer gets its own channel so acks never cross between them.
        channel = await self.bus.connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        return channel

    # -- decisions -------------------------------------------------------------

    async def _on_decision(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.create_task(self._decide(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _decide(self, message: AbstractIncomingMessage) -> None:
        envelope = await self._decode(message)
        if envelope is None:
            return

        log_extra = {"charger_id": envelope.charger_id}
        try:
            decision = await self.decider.decide(envelope)
        except (TimeoutError, RPCError, OSError) as exc:
            logger.warning(
                "no decision on %s from %s: %s",
                envelope.event.kind,
                envelope.charger_id,
                exc,
                extra=log_extra,
            )
            decision = DecisionError()
        except Exception:
            logger.exception(
                "deciding on %s from %s failed",
                envelope.event.kind,
                envelope.charger_id,
                extra=log_extra,
            )
            decision = DecisionError()

        if message.reply_to:
            await self.bus.publish_to_queue(
                message.reply_to,
                DecisionEnvelope(decision=decision).model_dump_json().encode(),
                persistent=False,
                correlation_id=message.correlation_id,
            )
        await message.ack()

    async def _decode(self, message: AbstractIncomingMessage) -> EventEnvelope | None:
        """Return the envelope, or drop a message no SG of this version can read."""
        try:
            envelope = EventEnvelope.model_validate_json(message.body)
        except ValidationError as exc:
            logger.warning("dropped unreadable bus message: %s", exc.errors()[:1])
            await message.reject(requeue=False)
            return None
        if envelope.contract > CONTRACT_VERSION:
            logger.warning(
                "dropped message of bus contract %s (this SG reads %s)",
                envelope.contract,
                CONTRACT_VERSION,
            )
            await message.reject(requeue=False)
            return None
        return envelope

    # -- events ----------------------------------------------------------------

    async def _on_event(self, message: AbstractIncomingMessage) -> None:
        envelope = await self._decode(message)
        if envelope is None:
            return
        self._pending.append((message, envelope))
        if len(self._pending) >= BATCH_MAX:
            self._full.set()

    async def _flush_forever(self) -> None:
        backoff = BATCH_WAIT_S
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), timeout=backoff)
            self._full.clear()
            if not self._pending:
                continue
            taken, self._pending = self._pending, []
            backoff = BATCH_WAIT_S if await self._flush(taken) else _grow(backoff)

    async def _flush(
        self, taken: list[tuple[AbstractIncomingMessage, EventEnvelope]]
    ) -> bool:
        """Write one batch; return False if the database could not be reached.

        A batch the database refuses for its content is written again event by
        event, so that one bad event goes to the dead letters alone.
        """
        batch = _fold(envelope for _, envelope in taken)
        try:
            await self._write(batch)
        except Exception as exc:
            if _transient(exc):
                logger.warning(
                    "storing %d events failed, requeued: %s", len(taken), exc
                )
                for message, _ in taken:
                    await message.nack(requeue=True)
                return False
            await self._signal_progress(await self._write_one_by_one(taken))
            return True

        for message, _ in taken:
            await message.ack()
        await self._signal_progress(batch.progress)
        return True

    async def _write(self, batch: Batch) -> None:
        async with self.db() as db:
            await batch.write(db)
            await db.commit()

    async def _write_one_by_one(
        self, taken: list[tuple[AbstractIncomingMessage, EventEnvelope]]
    ) -> dict[tuple[str, str], MeterProgress]:
        """Write each event alone; return the progress of those written."""
        progress: dict[tuple[str, str], MeterProgress] = {}
        for message, envelope in taken:
            single = _fold([envelope])
            try:
                await self._write(single)
            except Exception as exc:
                if _transient(exc):
                    await message.nack(requeue=True)
                    continue
                logger.error(
                    "event %s of %s cannot be stored, dead-lettered: %s",
                    envelope.event.kind,
                    envelope.charger_id,
                    exc,
                    extra={"charger_id": envelope.charger_id},
                )
                await message.reject(requeue=False)
                continue
            await message.ack()
            progress.update(single.progress)
        return progress

    async def _signal_progress(
        self, progress: dict[tuple[str, str], MeterProgress]
    ) -> None:
        due = {k: p for k, p in progress.items() if self.throttle.due(k)}
        if not due:
            return
        try:
            async with self.db() as db:
                workflows = await session_workflow_ids(db, list(due))
        except Exception as exc:
            # The samples are stored; the workflow reads them when it checks.
            logger.warning("meter progress not signalled: %s", exc)
            return
        await asyncio.gather(
            *(
                self._signal(workflows[key], p)
                for key, p in due.items()
                if key in workflows
            )
        )

    async def _signal(self, workflow_id: str, progress: MeterProgress) -> None:
        handle = self.temporal.get_workflow_handle(workflow_id)
        try:
            await handle.signal(METER_PROGRESS, progress)
        except RPCError as exc:
            # The session may be over; its samples are stored anyway.
            logger.debug("meter progress for %s not signalled: %s", workflow_id, exc)


def _fold(envelopes: Iterable[EventEnvelope]) -> Batch:
    batch = Batch()
    for envelope in envelopes:
        batch.add(envelope)
    return batch


def _transient(exc: Exception) -> bool:
    """Tell a database that is away from one that refuses the data."""
    if not isinstance(exc, DBAPIError):
        return True  # not an answer from the database: it may come back
    return exc.connection_invalidated or isinstance(
        exc, OperationalError | InterfaceError
    )


def _grow(backoff: float) -> float:
    return min(max(backoff, 0.5) * 2, RETRY_MAX_S)
