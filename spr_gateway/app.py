"""Run the SPR gateway: one bus client, one WebSocket server, until cancelled."""

import asyncio
import logging

from websockets.asyncio.server import serve

from bus.amqp import BusClient
from bus.contract import Topology
from moovolt.settings import Settings
from spr_gateway import tls, v16, v201
from spr_gateway.connection import ChargerConnection
from spr_gateway.dialect import Dialect
from spr_gateway.health import GatewayHealth, MeteredCommandRouter, MeteredSgClient
from spr_gateway.registry import ChargerRegistry
from spr_gateway.server import Gateway

logger = logging.getLogger(__name__)

# Most preferred first: a charger offering both gets the newest version.
DIALECTS: tuple[Dialect, ...] = (v201.DIALECT, v16.DIALECT)

# The handshake waits for the SG's connect decision; give it that long and a
# little more for the HTTP exchange itself.
HANDSHAKE_MARGIN_S = 5.0


async def run_gateway(
    settings: Settings, *, ready: asyncio.Event | None = None
) -> None:
    """Serve chargers until cancelled.

    On cancellation the gateway drains: ``/readyz`` turns 503 and new chargers
    are refused with 503 while the calls and commands in flight finish (at
    most ``MOOVOLT_SHUTDOWN_GRACE_S``). Then it stops listening, closes every
    charger's socket with 1001 (going away), lets their handlers publish what
    they owe the SG (disconnections, command results), and closes the bus.

    Args:
        settings: the gateway's settings (``MOOVOLT_GATEWAY_*`` and the bus).
        ready: set once the server listens.
    """
    # The ocpp library logs every frame at INFO.
    logging.getLogger("ocpp").setLevel(logging.WARNING)

    ssl_context = tls.server_context(settings)
    bus = BusClient(settings.amqp_url, Topology(settings.bus_prefix))
    registry: ChargerRegistry[ChargerConnection] = ChargerRegistry()
    health = GatewayHealth(bus)
    sg = MeteredSgClient(
        bus, settings.gateway_id, settings.decision_timeout_s, health.inflight
    )
    router = MeteredCommandRouter(
        bus, settings.gateway_id, registry.get, health.inflight
    )
    gateway = Gateway(settings, DIALECTS, sg, router, registry, health=health)
    websockets_log = logging.getLogger("websockets.server")
    websockets_log.addFilter(health.quiet_log)
    try:
        await bus.open()
        await sg.start()
        await router.start()
        async with serve(
            gateway.handler,
            settings.gateway_host,
            settings.gateway_port,
            process_request=gateway.process_request,
            subprotocols=gateway.subprotocols,
            max_size=settings.max_frame_bytes,
            # Measured: 14 KiB per idle socket without permessage-deflate, 46
            # KiB with it; OCPP frames are small, memory per charger is not.
            compression=None,
            open_timeout=settings.decision_timeout_s + HANDSHAKE_MARGIN_S,
            server_header="moovolt",
            ssl=ssl_context,
        ) as server:
            health.server = server
            logger.info(
                "gateway %s listening on %s:%s%s",
                settings.gateway_id,
                settings.gateway_host,
                settings.gateway_port,
                settings.gateway_path,
            )
            if ready is not None:
                ready.set()
            try:
                # Not serve_forever(): cancelling it closes the sockets at once.
                await server.wait_closed()
            except asyncio.CancelledError:
                await health.drain(settings.shutdown_grace_s)
                raise
    finally:
        await gateway.close()
        for stop in (router.stop, sg.stop):
            try:
                await stop()
            except Exception as exc:
                # The bus is closed next either way; say why, then go on.
                logger.warning("%s failed: %s", stop.__qualname__, exc)
        await bus.close()
        websockets_log.removeFilter(health.quiet_log)
        logger.info("gateway %s stopped", settings.gateway_id)
