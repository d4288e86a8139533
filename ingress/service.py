"""The SG's ingress: consumes charger requests and events from the bus.

Cancelled, it drains: it stops consuming both queues, lets the decisions in
flight finish and writes the events it holds, at most
``MOOVOLT_SHUTDOWN_GRACE_S``; whatever is still unfinished then is never
acknowledged, so the broker hands it to the next consumer.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Iterable
from time import perf_counter

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client
from temporalio.service import RPCError

from bus.amqp import CHANNEL_GONE, QUORUM, BusClient, settle
from bus.contract import (
    CONTRACT_VERSION,
    ConnectDecision,
    Decision,
    DecisionEnvelope,
    DecisionError,
    EventEnvelope,
)
from bus.domain import DomainEvent
from ingress.decisions import Decider
from ingress.events import Batch, SignalThrottle, hand_off, reservation_used
from moovolt import metrics
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
        self.decider = Decider(settings, db, temporal, events=bus)
        self.throttle = SignalThrottle(settings.meter_signal_interval_s)
        self._pending: list[tuple[AbstractIncomingMessage, EventEnvelope]] = []
        self._full = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._consumers: list[tuple[AbstractQueue, str]] = []
        self._flushing: asyncio.Future[bool] | None = None
        # "starting", "ok" while consuming, "draining" once cancelled.
        self.state = "starting"

    async def run(self) -> None:
        """Consume until cancelled, then drain."""
        topology = self.bus.topology
        decisions = await self._channel(self.settings.decision_prefetch)
        events = await self._channel(BATCH_MAX * 2)
        decisions_queue = await decisions.declare_queue(
            topology.decisions, durable=True, arguments=QUORUM
        )
        events_queue = await events.declare_queue(
            topology.events,
            durable=True,
            arguments=self.bus.queue_arguments(topology.events),
        )
        self._consumers = [
            (decisions_queue, await decisions_queue.consume(self._on_decision)),
            (events_queue, await events_queue.consume(self._on_event)),
        ]
        self.state = "ok"
        logger.info("ingress consuming %s and %s", topology.decisions, topology.events)
        try:
            await self._flush_forever()
        except asyncio.CancelledError:
            await self._drain(self.settings.shutdown_grace_s)
            raise

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
        started = perf_counter()
        decision: Decision
        try:
            decision = await self.decider.decide(envelope)
            outcome = _outcome(decision)
        except (TimeoutError, RPCError, OSError) as exc:
            logger.warning(
                "no decision on %s from %s: %s",
                envelope.event.kind,
                envelope.charger_id,
                exc,
                extra=log_extra,
            )
            decision, outcome = DecisionError(), "failed"
        except Exception:
            logger.exception(
                "deciding on %s from %s failed",
                envelope.event.kind,
                envelope.charger_id,
                extra=log_extra,
            )
            decision, outcome = DecisionError(), "failed"
        metrics.SG_DECISIONS.labels(envelope.event.kind, outcome).observe(
            metrics.since(started)
        )

        try:
            if message.reply_to:
                await self.bus.publish_to_queue(
                    message.reply_to,
                    DecisionEnvelope(decision=decision).model_dump_json().encode(),
                    persistent=False,
                    correlation_id=message.correlation_id,
                )
        except CHANNEL_GONE as exc:
            # The asking gateway or the broker is gone; the charger asks again.
            # Still acknowledged: an unacknowledged request would hold a slot of
            # the prefetch for good (if the broker is gone, it redelivers it).
            logger.warning(
                "decision on %s from %s not delivered: %r",
                envelope.event.kind,
                envelope.charger_id,
                exc,
                extra=log_extra,
            )
        # A start on a reservation ends it (its workflow's ``used``).
        await hand_off(self.temporal, reservation_used(envelope, decision))
        await settle(message.ack())

    async def _decode(self, message: AbstractIncomingMessage) -> EventEnvelope | None:
        """Return the envelope, or drop a message no SG of this version can read."""
        try:
            envelope = EventEnvelope.model_validate_json(message.body)
        except ValidationError as exc:
            logger.warning("dropped unreadable bus message: %s", exc.errors()[:1])
            await settle(message.reject(requeue=False))
            return None
        if envelope.contract > CONTRACT_VERSION:
            logger.warning(
                "dropped message of bus contract %s (this SG reads %s)",
                envelope.contract,
                CONTRACT_VERSION,
            )
            await settle(message.reject(requeue=False))
            return None
        return envelope

    # -- events ----------------------------------------------------------------

    async def _on_event(self, message: AbstractIncomingMessage) -> None:
        envelope = await self._decode(message)
        if envelope is None:
            metrics.SG_EVENTS_DEAD_LETTERED.labels(metrics.UNKNOWN).inc()
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
            # Shielded: a batch being written is finished by the drain, not cut.
            self._flushing = asyncio.ensure_future(self._flush_pending())
            stored = await asyncio.shield(self._flushing)
            backoff = BATCH_WAIT_S if stored else _grow(backoff)

    async def _flush_pending(self) -> bool:
        taken, self._pending = self._pending, []
        return await self._flush(taken)

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
                metrics.SG_EVENT_BATCHES.labels("requeued").observe(len(taken))
                for message, _ in taken:
                    if not await settle(message.nack(requeue=True)):
                        break  # the channel is gone: the broker requeues them all
                return False
            metrics.SG_EVENT_BATCHES.labels("split").observe(len(taken))
            await self._signal_progress(await self._write_one_by_one(taken))
            return True

        for message, _ in taken:
            if not await settle(message.ack()):
                break  # stored; the broker redelivers them, stored once anyway
        metrics.SG_EVENT_BATCHES.labels("stored").observe(len(taken))
        for _, envelope in taken:
            metrics.SG_EVENTS_STORED.labels(envelope.event.kind).inc()
        await self._signal_progress(batch.progress)
        await self._tell(batch.domain_events)
        await hand_off(self.temporal, batch.handoffs)
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
                    await settle(message.nack(requeue=True))
                    continue
                logger.error(
                    "event %s of %s cannot be stored, dead-lettered: %s",
                    envelope.event.kind,
                    envelope.charger_id,
                    exc,
                    extra={"charger_id": envelope.charger_id},
                )
                await settle(message.reject(requeue=False))
                metrics.SG_EVENTS_DEAD_LETTERED.labels(envelope.event.kind).inc()
                continue
            await settle(message.ack())
            metrics.SG_EVENTS_STORED.labels(envelope.event.kind).inc()
            progress.update(single.progress)
            await self._tell(single.domain_events)
            await hand_off(self.temporal, single.handoffs)
        return progress

    async def _tell(self, events: list[DomainEvent]) -> None:
        """Publish what a stored batch means to other systems, best effort.

        The data is stored already; a status event lost to a broker outage is
        not worth storing the batch again for.
        """
        try:
            for event in events:
                await self.bus.publish_event(event)
        except Exception as exc:
            logger.warning("%d domain events not published: %s", len(events), exc)

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

    # -- shutdown --------------------------------------------------------------

    async def _drain(self, grace_s: float) -> None:
        """Stop consuming; finish the decisions and events taken, within ``grace_s``.

        Messages still unfinished after ``grace_s`` are left unacknowledged:
        the broker requeues them when the channel closes.
        """
        self.state = "draining"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        logger.info(
            "ingress draining: %d decisions in flight, %d events held",
            len(self._tasks),
            len(self._pending),
        )
        for queue, tag in self._consumers:
            if not await _within(queue.cancel(tag), deadline - loop.time()):
                logger.warning("could not stop consuming %s", queue.name)
        self._consumers = []

        while self._tasks and loop.time() < deadline:
            await asyncio.wait(set(self._tasks), timeout=deadline - loop.time())
        if self._flushing is not None and not self._flushing.done():
            await _within(self._flushing, deadline - loop.time())
        if self._pending:
            self._flushing = asyncio.ensure_future(self._flush_pending())
            await _within(self._flushing, deadline - loop.time())

        unfinished = [task for task in self._tasks if not task.done()]
        for task in unfinished:
            task.cancel()
        if unfinished:
            await asyncio.wait(unfinished)
            logger.warning(
                "%d decisions unfinished after %.0f s, left to the broker",
                len(unfinished),
                grace_s,
            )
        logger.info("ingress drained")


async def _within(work: Awaitable[object], timeout_s: float) -> bool:
    """Await ``work`` for at most ``timeout_s``; cancel it if late.

    Returns:
        Whether ``work`` finished in time (with a result or an exception).
    """
    future = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({future}, timeout=max(timeout_s, 0))
    if not done:
        future.cancel()
        return False
    if not future.cancelled():
        future.exception()  # retrieved: a failure here is the caller's to log
    return True


def _outcome(decision: Decision) -> str:
    """Name a decision's outcome for the metrics: ok, refused or error."""
    if isinstance(decision, DecisionError):
        return "error"
    if isinstance(decision, ConnectDecision) and not decision.accepted:
        return "refused"
    return "ok"


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
