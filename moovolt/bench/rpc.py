"""The bus's baseline: a raw ``aio-pika`` RPC round trip.

``python -m moovolt.bench.rpc <amqp url> <queue>`` answers every request on
``queue`` with its own body, to its ``reply_to`` and ``correlation_id``. The
client side (``round_trips``) publishes the way the gateway publishes a
decision request: persistent, to a quorum queue, with publisher confirms, and
waits on a private replies queue. Nothing else happens on either side.
"""

import asyncio
import contextlib
import signal
import sys
import time
import uuid
from array import array

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from pamqp.common import FieldTable

QUORUM: FieldTable = {"x-queue-type": "quorum"}
BODY = b'{"kind":"authorize","id_token":"BENCH-00000"}'


async def respond(url: str, queue_name: str) -> None:
    """Answer requests on ``queue_name`` until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set_result, None)
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=64)
        queue = await channel.declare_queue(queue_name, durable=True, arguments=QUORUM)

        async def answer(message: AbstractIncomingMessage) -> None:
            await channel.default_exchange.publish(
                aio_pika.Message(message.body, correlation_id=message.correlation_id),
                routing_key=message.reply_to or "",
            )
            await message.ack()

        await queue.consume(answer)
        await stop


async def round_trips(
    url: str, queue_name: str, *, concurrency: int, seconds: float
) -> "array[float]":
    """Run RPCs in closed loops for ``seconds``; return their latencies (s)."""
    latencies: array[float] = array("d")
    waiting: dict[str, asyncio.Future[None]] = {}
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.declare_queue(queue_name, durable=True, arguments=QUORUM)
        replies = await channel.declare_queue(exclusive=True, auto_delete=True)

        async def on_reply(message: AbstractIncomingMessage) -> None:
            future = waiting.pop(message.correlation_id or "", None)
            if future is not None and not future.done():
                future.set_result(None)
            await message.ack()

        await replies.consume(on_reply)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds

        async def client() -> None:
            while loop.time() < deadline:
                correlation_id = str(uuid.uuid4())
                future = loop.create_future()
                waiting[correlation_id] = future
                started = time.perf_counter()
                await channel.default_exchange.publish(
                    aio_pika.Message(
                        BODY,
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        correlation_id=correlation_id,
                        reply_to=replies.name,
                    ),
                    routing_key=queue_name,
                )
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(10):
                        await future
                        latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(client() for _ in range(concurrency)))
    return latencies


if __name__ == "__main__":
    asyncio.run(respond(sys.argv[1], sys.argv[2]))
