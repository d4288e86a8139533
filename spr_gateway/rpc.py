"""The gateway's side of the SG link: decision RPCs and fire-and-forget events.

Decisions are RPCs over RabbitMQ: the request goes persistent to the shared
``decisions`` queue with ``reply_to`` naming this gateway's private replies
queue and a fresh ``correlation_id``; the SG's ``DecisionEnvelope`` comes back
there and resolves the waiting future. OCPP unique ids are not used as
correlation ids because they repeat across chargers.
"""

import asyncio
import logging
import uuid

from aio_pika.abc import AbstractIncomingMessage, AbstractQueue

from bus.amqp import BusClient, settle
from bus.contract import Decision, DecisionEnvelope, DecisionError, EventEnvelope
from spr_gateway.codec import decode, encode, summary

logger = logging.getLogger(__name__)


class DecisionTimeout(Exception):
    """The SG did not answer a decision request in time."""


class BusUnavailable(Exception):
    """A publish to the bus failed or was not confirmed."""


class SgClient:
    """Ask the SG for decisions and tell it about events, over one BusClient."""

    def __init__(self, bus: BusClient, gateway_id: str, timeout_s: float) -> None:
        self.bus = bus
        self.timeout_s = timeout_s
        self.replies_queue = bus.topology.gateway_replies(gateway_id)
        self._waiting: dict[str, asyncio.Future[Decision]] = {}
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None

    async def start(self) -> None:
        """Declare the private replies queue and start consuming it."""
        self._queue = await self.bus.declare_private_queue(self.replies_queue)
        self._consumer_tag = await self._queue.consume(self._on_reply)

    async def stop(self) -> None:
        """Stop consuming; requests still waiting fail as timed out."""
        if self._queue is not None and self._consumer_tag is not None:
            await self._queue.cancel(self._consumer_tag)
            self._consumer_tag = None
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(DecisionTimeout("gateway stopping"))
        self._waiting.clear()

    async def ask(self, envelope: EventEnvelope) -> Decision:
        """Publish ``envelope`` as a decision request and wait for the answer.

        Args:
            envelope: the charger's request.

        Returns:
            The SG's decision, possibly a ``DecisionError``.

        Raises:
            DecisionTimeout: no answer within ``timeout_s``.
            BusUnavailable: the request could not be published.
        """
        correlation_id = str(uuid.uuid4())
        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        # Registered before publishing: the answer may beat the confirm.
        self._waiting[correlation_id] = future
        try:
            # The publish counts against the budget too: a broker that blocks
            # publishers must not hold a charger past its answer time.
            async with asyncio.timeout(self.timeout_s):
                await self._publish(
                    self.bus.topology.decisions,
                    encode(envelope),
                    correlation_id=correlation_id,
                    reply_to=self.replies_queue,
                )
                return await future
        except TimeoutError:
            raise DecisionTimeout(envelope.event.kind) from None
        finally:
            self._waiting.pop(correlation_id, None)

    async def tell(self, envelope: EventEnvelope) -> None:
        """Publish a fire-and-forget event and wait for the broker's confirm.

        Raises:
            BusUnavailable: the event could not be published, or the confirm
                took longer than ``timeout_s``.
        """
        try:
            async with asyncio.timeout(self.timeout_s):
                await self._publish(self.bus.topology.events, encode(envelope))
        except TimeoutError:
            raise BusUnavailable("no confirm in time") from None

    async def _publish(
        self,
        queue: str,
        body: bytes,
        *,
        correlation_id: str | None = None,
        reply_to: str | None = None,
    ) -> None:
        try:
            await self.bus.publish_to_queue(
                queue,
                body,
                persistent=True,
                correlation_id=correlation_id,
                reply_to=reply_to,
            )
        except Exception as exc:
            raise BusUnavailable(str(exc) or type(exc).__name__) from exc

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        try:
            self._resolve(message)
        finally:
            await settle(message.ack())

    def _resolve(self, message: AbstractIncomingMessage) -> None:
        future = self._waiting.get(message.correlation_id or "")
        if future is None or future.done():
            logger.debug("late or unknown decision %s", message.correlation_id)
            return
        try:
            decision = decode(DecisionEnvelope, message.body).decision
        except ValueError as exc:
            logger.warning("undecodable decision dropped: %s", summary(exc))
            # The waiting charger gets an InternalError now, not after a timeout.
            decision = DecisionError(description="undecodable decision")
        future.set_result(decision)
