"""RabbitMQ plumbing shared by both halves: connection, topology, publishing."""

import logging
from collections.abc import Awaitable
from typing import Self

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractQueue,
    AbstractRobustConnection,
)
from aio_pika.exceptions import PublishError
from aiormq.exceptions import AMQPError, ChannelInvalidStateError
from pamqp.common import FieldTable

from bus.contract import Topology
from bus.domain import DomainEvent

logger = logging.getLogger(__name__)

QUORUM: FieldTable = {"x-queue-type": "quorum"}


# What settling a delivery raises once its channel is gone with the broker.
CHANNEL_GONE = (AMQPError, ChannelInvalidStateError, ConnectionError)


class ChargerOffline(Exception):
    """No gateway holds a connection to the charger a command is for."""


async def settle(delivery: Awaitable[object]) -> bool:
    """Await an ack, nack or reject; return False if its channel is gone.

    The broker requeues every unsettled delivery of a channel that closed, so
    a settlement that can no longer be sent loses nothing: the message comes
    again, to a consumer that must take it idempotently. A consumer that
    raised here instead would die with the broker's restart.
    """
    try:
        await delivery
    except CHANNEL_GONE as exc:
        logger.info("delivery not settled, the broker redelivers it: %r", exc)
        return False
    return True


class BusClient:
    """A robust connection, one confirming channel and the shared topology.

    Every publish waits for the broker's confirm, so a caller that returns
    normally knows the message is stored (persistent) or routed.
    """

    def __init__(self, url: str, topology: Topology, *, prefetch: int = 64) -> None:
        self.url = url
        self.topology = topology
        self.prefetch = prefetch
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._commands: AbstractExchange | None = None
        self._domain_events: AbstractExchange | None = None

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Connect and declare the durable queues and the commands exchange."""
        self._connection = await aio_pika.connect_robust(self.url)
        self._channel = await self._connection.channel(
            publisher_confirms=True, on_return_raises=True
        )
        await self._channel.set_qos(prefetch_count=self.prefetch)
        for name in self.topology.durable_queues:
            await self._channel.declare_queue(
                name, durable=True, arguments=self.queue_arguments(name)
            )
        self._commands = await self._channel.declare_exchange(
            self.topology.commands_exchange,
            aio_pika.ExchangeType.DIRECT,
            durable=True,
        )
        self._domain_events = await self._channel.declare_exchange(
            self.topology.domain_events, aio_pika.ExchangeType.TOPIC, durable=True
        )
        logger.info("connected to RabbitMQ, prefix %s", self.topology.prefix)

    def queue_arguments(self, name: str) -> FieldTable:
        """Return the arguments every declaration of queue ``name`` must use."""
        if name == self.topology.events:
            # A rejected event goes to the dead letters, never away.
            return {
                **QUORUM,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": self.topology.dead_letters,
            }
        return QUORUM

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    @property
    def connection(self) -> AbstractRobustConnection:
        if self._connection is None:
            raise RuntimeError("BusClient is not open")
        return self._connection

    @property
    def channel(self) -> AbstractChannel:
        if self._channel is None:
            raise RuntimeError("BusClient is not open")
        return self._channel

    @property
    def commands_exchange(self) -> AbstractExchange:
        if self._commands is None:
            raise RuntimeError("BusClient is not open")
        return self._commands

    @property
    def domain_events_exchange(self) -> AbstractExchange:
        if self._domain_events is None:
            raise RuntimeError("BusClient is not open")
        return self._domain_events

    async def publish_event(self, event: DomainEvent) -> None:
        """Publish a domain event and wait for the broker's confirm."""
        # Not mandatory: an event nobody has subscribed to is simply dropped.
        await self.domain_events_exchange.publish(
            event.message(), event.type, mandatory=False
        )

    async def declare_private_queue(self, name: str) -> AbstractQueue:
        """Declare a queue that lives and dies with this connection."""
        return await self.channel.declare_queue(name, exclusive=True, auto_delete=True)

    async def publish_to_queue(
        self,
        queue: str,
        body: bytes,
        *,
        persistent: bool = True,
        correlation_id: str | None = None,
        reply_to: str | None = None,
        expiration: float | None = None,
    ) -> None:
        """Publish through the default exchange and wait for the confirm."""
        message = aio_pika.Message(
            body,
            content_type="application/json",
            delivery_mode=(
                aio_pika.DeliveryMode.PERSISTENT
                if persistent
                else aio_pika.DeliveryMode.NOT_PERSISTENT
            ),
            correlation_id=correlation_id,
            reply_to=reply_to,
            expiration=expiration,
        )
        # Raises DeliveryError if the broker nacks it.
        await self.channel.default_exchange.publish(message, queue)

    async def publish_command(
        self, charger_id: str, body: bytes, *, correlation_id: str
    ) -> None:
        """Route a command to whichever gateway holds ``charger_id``.

        Raises:
            ChargerOffline: no gateway has bound the charger's routing key.
        """
        message = aio_pika.Message(
            body,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT,
            correlation_id=correlation_id,
            # The broker returns an unroutable message by its message id.
            message_id=correlation_id,
        )
        try:
            await self.commands_exchange.publish(
                message, Topology.charger_key(charger_id), mandatory=True
            )
        except PublishError as exc:
            raise ChargerOffline(charger_id) from exc
