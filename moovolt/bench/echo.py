"""The gateway's baseline: a raw ``websockets`` server that echoes each frame.

Run as ``python -m moovolt.bench.echo <port>``; it serves with the gateway's
own socket settings (no compression, the same largest frame, both OCPP
subprotocols) until SIGTERM, and does nothing else.
"""

import asyncio
import signal
import sys

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

SUBPROTOCOLS = [Subprotocol("ocpp2.0.1"), Subprotocol("ocpp1.6")]
MAX_FRAME_BYTES = 65536


async def echo(ws: ServerConnection) -> None:
    """Send every frame back as it came."""
    try:
        async for frame in ws:
            await ws.send(frame)
    except ConnectionClosed:
        pass


async def serve_echo(port: int) -> None:
    """Serve until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set_result, None)
    async with serve(
        echo,
        "127.0.0.1",
        port,
        subprotocols=SUBPROTOCOLS,
        max_size=MAX_FRAME_BYTES,
        compression=None,
    ):
        await stop


if __name__ == "__main__":
    asyncio.run(serve_echo(int(sys.argv[1])))
