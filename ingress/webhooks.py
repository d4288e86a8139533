"""Starting webhook deliveries from the domain events the SG publishes.

The worker keeps a durable queue on the domain-events exchange; for each
event and each active webhook that subscribes to its type, it starts one
``WebhookDelivery`` workflow, whose id makes a repeated event one delivery.
"""

import asyncio
import contextlib
import fnmatch
import logging

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from activities.types import WebhookInput
from bus.amqp import QUORUM, BusClient
from bus.domain import DomainEvent
from moovolt.settings import Settings
from store.webhooks import Webhook
from workflows.webhook import WEBHOOK_DELIVERY, WebhookPlan, webhook_workflow_id

logger = logging.getLogger(__name__)

# After a failure to start deliveries, the event comes back after this long.
RETRY_S = 2.0


def subscribed(hook: Webhook, event_type: str) -> bool:
    """Whether ``hook`` wants events of ``event_type`` (no types: all)."""
    patterns = hook.event_types or ["*"]
    return any(fnmatch.fnmatchcase(event_type, pattern) for pattern in patterns)


class WebhookDispatcher:
    """Turn domain events into webhook deliveries, in the SG worker."""

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

    async def run(self) -> None:
        """Consume the webhooks queue until cancelled."""
        topology = self.bus.topology
        channel = await self.bus.connection.channel()
        await channel.set_qos(prefetch_count=32)
        exchange = await channel.declare_exchange(
            topology.domain_events, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(
            topology.webhooks, durable=True, arguments=QUORUM
        )
        await queue.bind(exchange, "#")
        await queue.consume(self._on_event)
        logger.info("webhook dispatcher consuming %s", topology.webhooks)
        await asyncio.Future()

    async def _on_event(self, message: AbstractIncomingMessage) -> None:
        try:
            event = DomainEvent.model_validate_json(message.body)
        except ValidationError as exc:
            logger.warning("unreadable domain event dropped: %s", exc)
            await message.reject(requeue=False)
            return
        try:
            for hook in await self._subscribers(event.type):
                await self._start(hook, event)
        except Exception as exc:
            logger.warning("webhook deliveries of %s not started: %s", event.id, exc)
            await asyncio.sleep(RETRY_S)
            await message.nack(requeue=True)
            return
        await message.ack()

    async def _subscribers(self, event_type: str) -> list[Webhook]:
        # Read for every event: a webhook gets every event stored after it
        # was created, with no cache to go stale in between.
        async with self.db() as db:
            found = await db.exec(select(Webhook).where(col(Webhook.active)))
            hooks = found.all()
        return [hook for hook in hooks if subscribed(hook, event_type)]

    async def _start(self, hook: Webhook, event: DomainEvent) -> None:
        assert hook.id is not None
        plan = WebhookPlan(
            delivery=WebhookInput(webhook_id=hook.id, event=event),
            retry_initial_s=self.settings.webhook_retry_initial_s,
            retry_max_s=self.settings.webhook_retry_max_s,
            give_up_after_s=self.settings.webhook_give_up_after_s,
        )
        # A repeat of the event finds its delivery started: one is enough.
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await self.temporal.start_workflow(
                WEBHOOK_DELIVERY,
                plan,
                id=webhook_workflow_id(hook.id, event.id),
                task_queue=self.settings.temporal_task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
