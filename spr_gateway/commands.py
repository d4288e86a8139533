"""SG commands in, command results out.

RabbitMQ routing is the connection registry: while this gateway holds a
charger it binds ``charger.<id>`` on the commands exchange to its private
commands queue, so a command published for that charger lands here, and a
command for a charger nobody holds comes back unroutable to the publisher.
"""

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from aio_pika.abc import AbstractIncomingMessage, AbstractQueue

from bus.amqp import BusClient, settle
from bus.contract import CommandEnvelope, CommandResult, Topology
from spr_gateway.codec import decode, encode, summary

logger = logging.getLogger(__name__)


class CommandSink(Protocol):
    def submit(self, envelope: CommandEnvelope) -> bool:
        """Queue ``envelope`` for the charger; False if the socket is closing."""
        ...


class CommandRouter:
    """Consume this gateway's commands queue and keep its bindings true.

    Args:
        bus: the gateway's bus client.
        gateway_id: names the private commands queue.
        holder_of: returns the connection holding a charger, or ``None``.
    """

    def __init__(
        self,
        bus: BusClient,
        gateway_id: str,
        holder_of: Callable[[str], CommandSink | None],
    ) -> None:
        self.bus = bus
        self.queue_name = bus.topology.gateway_commands(gateway_id)
        self._holder_of = holder_of
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._bound: set[str] = set()
        # One lock per charger serializes its bind/unbind, so that an unbind
        # for a closing socket cannot land after the bind for its successor.
        self._locks: dict[str, asyncio.Lock] = {}
        self._lock_users: dict[str, int] = {}

    async def start(self) -> None:
        """Declare the private commands queue and start consuming it."""
        self._queue = await self.bus.declare_private_queue(self.queue_name)
        self._consumer_tag = await self._queue.consume(self._on_command)

    async def stop(self) -> None:
        """Stop consuming commands."""
        if self._queue is not None and self._consumer_tag is not None:
            await self._queue.cancel(self._consumer_tag)
            self._consumer_tag = None

    async def sync(self, charger_id: str) -> None:
        """Bind or unbind the charger's routing key to match who holds it now.

        Raises:
            Exception: the broker refused or the connection is down (aio-pika).
        """
        lock = self._locks.setdefault(charger_id, asyncio.Lock())
        self._lock_users[charger_id] = self._lock_users.get(charger_id, 0) + 1
        try:
            async with lock:
                await self._sync_locked(charger_id)
        finally:
            self._lock_users[charger_id] -= 1
            if not self._lock_users[charger_id]:
                del self._lock_users[charger_id]
                del self._locks[charger_id]

    async def _sync_locked(self, charger_id: str) -> None:
        queue = self._queue
        if queue is None:
            raise RuntimeError("CommandRouter is not started")
        held = self._holder_of(charger_id) is not None
        key = Topology.charger_key(charger_id)
        if held and charger_id not in self._bound:
            await queue.bind(self.bus.commands_exchange, routing_key=key)
            self._bound.add(charger_id)
        elif not held and charger_id in self._bound:
            self._bound.discard(charger_id)
            await queue.unbind(self.bus.commands_exchange, routing_key=key)

    async def publish_result(self, result: CommandResult) -> None:
        """Publish a command's result persistent to the results queue.

        A failure is logged, not raised: the command has run, and the SG's
        activity timeout is the backstop for a result that never arrives.
        """
        extra = {"charger_id": result.charger_id, "command_id": result.command_id}
        try:
            await self.bus.publish_to_queue(
                self.bus.topology.results,
                encode(result),
                persistent=True,
                correlation_id=result.command_id,
            )
        except Exception as exc:
            logger.error(
                "result of command %s lost: %s", result.command_id, exc, extra=extra
            )
            logger.debug("publish failure", exc_info=True, extra=extra)
            return
        logger.debug(
            "command %s: %s", result.command_id, result.outcome.value, extra=extra
        )

    async def _on_command(self, message: AbstractIncomingMessage) -> None:
        try:
            self._route(message)
        finally:
            # Acked once queued to the connection (or dropped): the command is
            # the connection's to answer from here on.
            await settle(message.ack())

    def _route(self, message: AbstractIncomingMessage) -> None:
        try:
            envelope = decode(CommandEnvelope, message.body)
        except ValueError as exc:
            logger.warning("undecodable command dropped: %s", summary(exc))
            return
        extra = {"charger_id": envelope.charger_id, "command_id": envelope.command_id}
        holder = self._holder_of(envelope.charger_id)
        if holder is None or not holder.submit(envelope):
            logger.debug(
                "command %s for a charger not held here dropped",
                envelope.command_id,
                extra=extra,
            )
            return
        logger.debug(
            "command %s queued: %s",
            envelope.command_id,
            envelope.command.kind,
            extra=extra,
        )
