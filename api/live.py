"""The live feed: domain events from the bus, fanned out to API clients.

One API process keeps one private queue bound to the domain-events exchange
while anyone listens, and copies each event to every subscriber's buffer.
A subscriber too slow to keep up loses its stream (it is told so and may
reconnect) rather than slow the others down or grow without bound.
"""

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from pydantic import ValidationError

from bus.contract import Topology
from bus.domain import DomainEvent

logger = logging.getLogger(__name__)

# Events one subscriber may have waiting before it is cut off.
BUFFER = 1000


class Overflow(Exception):
    """The subscriber fell more than ``BUFFER`` events behind."""


class LiveFeed:
    """Subscribe API clients to the domain events as they happen.

    Args:
        amqp_url: the broker.
        prefix: the deployment's bus prefix.
    """

    def __init__(self, amqp_url: str, prefix: str) -> None:
        self._url = amqp_url
        self._topology = Topology(prefix)
        self._subscribers: set[asyncio.Queue[DomainEvent | None]] = set()
        self._connection: AbstractRobustConnection | None = None
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[DomainEvent | None]]:
        """Yield a buffer that receives every event from now on.

        A ``None`` in the buffer means the subscriber overflowed and was cut.
        """
        await self.ready()
        buffer: asyncio.Queue[DomainEvent | None] = asyncio.Queue(BUFFER + 1)
        self._subscribers.add(buffer)
        try:
            yield buffer
        finally:
            self._subscribers.discard(buffer)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def ready(self) -> None:
        """Start consuming, if not yet; raise if the broker cannot be reached."""
        async with self._lock:
            if self._connection is not None:
                return
            connection = await aio_pika.connect_robust(self._url)
            channel = await connection.channel()
            exchange = await channel.declare_exchange(
                self._topology.domain_events, aio_pika.ExchangeType.TOPIC, durable=True
            )
            queue = await channel.declare_queue(
                f"{self._topology.prefix}.api.live.{uuid.uuid4().hex[:12]}",
                exclusive=True,
                auto_delete=True,
            )
            await queue.bind(exchange, "#")
            await queue.consume(self._deliver, no_ack=True)
            self._connection = connection
            logger.info("live feed consuming %s", self._topology.domain_events)

    async def _deliver(self, message: AbstractIncomingMessage) -> None:
        try:
            event = DomainEvent.model_validate_json(message.body)
        except ValidationError as exc:
            logger.warning("unreadable domain event dropped: %s", exc)
            return
        for buffer in list(self._subscribers):
            if buffer.qsize() >= BUFFER:
                self._subscribers.discard(buffer)
                buffer.put_nowait(None)
                logger.warning("a live feed subscriber fell behind and was cut off")
                continue
            buffer.put_nowait(event)
