"""The gateway's operations: probes on its own port, metrics, and the drain.

A plain HTTP ``GET`` (no ``Upgrade`` header) of ``/healthz``, ``/readyz`` or
``/metrics`` is answered in ``process_request`` before any WebSocket logic,
with the websockets library's ``ServerConnection.respond``; with TLS on they
are served over HTTPS on the same port. Ready means: the bus is connected and
the server accepts chargers (it is listening and not draining).

On shutdown the gateway drains: it refuses new chargers with 503 and waits,
at most ``MOOVOLT_SHUTDOWN_GRACE_S``, until no charger's call waits on the SG
and no command waits on a charger; only then are the sockets closed with
1001. ``MeteredSgClient`` and ``MeteredCommandRouter`` count that work and
time it.
"""

import asyncio
import logging
import uuid
from collections.abc import Callable
from time import perf_counter

from websockets.asyncio.server import Server, ServerConnection
from websockets.http11 import Request, Response

from bus.amqp import BusClient
from bus.contract import (
    CommandEnvelope,
    CommandResult,
    Decision,
    DecisionError,
    EventEnvelope,
)
from moovolt import metrics
from moovolt.probes import OK, Readiness, answer, bus_state, probe_path
from spr_gateway.commands import CommandRouter, CommandSink
from spr_gateway.rpc import BusUnavailable, DecisionTimeout, SgClient

logger = logging.getLogger(__name__)

# How often the drain looks at the work in flight.
POLL_S = 0.05
# An SG answer reaches the charger a few event-loop steps after the RPC ends.
SETTLE_S = 0.05


class InFlight:
    """The work a gateway still owes: chargers' calls and SG commands."""

    def __init__(self) -> None:
        self.calls = 0
        self.commands = 0

    @property
    def idle(self) -> bool:
        return self.calls <= 0 and self.commands <= 0


class GatewayHealth:
    """Answer the gateway's probes and drain it on shutdown.

    Args:
        bus: the gateway's bus client.
    """

    def __init__(self, bus: BusClient) -> None:
        self.bus = bus
        self.inflight = InFlight()
        self.server: Server | None = None
        self.draining = False
        self.readiness = Readiness({"bus": self._bus, "server": self._server})
        self.quiet_log = QuietProbes()

    async def respond(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        """Answer a plain HTTP probe; None for anything else (websockets hook).

        Args:
            connection: the connection being opened.
            request: its HTTP request.

        Returns:
            The probe's answer, or None when the request is no probe.
        """
        if "Upgrade" in request.headers:
            return None
        path = probe_path(request.path)
        if path is None:
            return None
        probe = await answer(path, self.readiness, metrics.GATEWAY)
        if probe.status < 400:
            self.quiet_log.quiet(connection)
        response = connection.respond(probe.status, probe.body)
        del response.headers["Content-Type"]
        response.headers["Content-Type"] = probe.content_type
        response.headers["Cache-Control"] = "no-store"
        return response

    async def drain(self, grace_s: float) -> None:
        """Refuse new chargers and wait for the work in flight, at most ``grace_s``.

        Args:
            grace_s: the longest wait; the sockets are closed after it anyway.
        """
        self.draining = True
        inflight = self.inflight
        logger.info(
            "draining: %d calls and %d commands in flight, waiting at most %.0f s",
            inflight.calls,
            inflight.commands,
            grace_s,
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        while loop.time() < deadline:
            if inflight.idle:
                await asyncio.sleep(SETTLE_S)
                if inflight.idle:
                    logger.info("drained")
                    return
            await asyncio.sleep(POLL_S)
        logger.warning(
            "%d calls and %d commands still in flight after %.0f s; closing",
            inflight.calls,
            inflight.commands,
            grace_s,
        )

    async def _bus(self) -> str:
        return bus_state(self.bus)

    async def _server(self) -> str:
        if self.draining:
            return "draining"
        if self.server is None:
            return "starting"
        return OK if self.server.is_serving() else "closed"


class MeteredSgClient(SgClient):
    """An ``SgClient`` that times its RPCs and counts what is in flight.

    Args:
        bus: the gateway's bus client.
        gateway_id: this gateway's id.
        timeout_s: how long a decision may take.
        inflight: where the calls in flight are counted.
    """

    def __init__(
        self, bus: BusClient, gateway_id: str, timeout_s: float, inflight: InFlight
    ) -> None:
        super().__init__(bus, gateway_id, timeout_s)
        self.inflight = inflight

    async def ask(self, envelope: EventEnvelope) -> Decision:
        """Ask the SG as ``SgClient.ask`` does, timed by event kind and outcome."""
        started = perf_counter()
        outcome = "answered"
        self.inflight.calls += 1
        try:
            decision = await super().ask(envelope)
            if isinstance(decision, DecisionError):
                outcome = "error"
            return decision
        except DecisionTimeout:
            outcome = "timeout"
            raise
        except BusUnavailable:
            outcome = "unavailable"
            raise
        finally:
            self.inflight.calls -= 1
            metrics.GATEWAY_DECISIONS.labels(envelope.event.kind, outcome).observe(
                metrics.since(started)
            )

    async def tell(self, envelope: EventEnvelope) -> None:
        """Publish as ``SgClient.tell`` does, counted by event kind and outcome."""
        outcome = "confirmed"
        self.inflight.calls += 1
        try:
            await super().tell(envelope)
        except BusUnavailable:
            outcome = "unavailable"
            raise
        finally:
            self.inflight.calls -= 1
            metrics.GATEWAY_EVENTS.labels(envelope.event.kind, outcome).inc()


class _CountedSink:
    """A charger's connection, counting the commands it takes."""

    def __init__(self, sink: CommandSink, inflight: InFlight) -> None:
        self._sink = sink
        self._inflight = inflight

    def submit(self, envelope: CommandEnvelope) -> bool:
        taken = self._sink.submit(envelope)
        if taken:
            self._inflight.commands += 1
        return taken


class MeteredCommandRouter(CommandRouter):
    """A ``CommandRouter`` that counts commands in flight and results by outcome.

    Every command a connection takes ends in exactly one published result,
    which is when it stops being in flight.

    Args:
        bus: the gateway's bus client.
        gateway_id: names the private commands queue.
        holder_of: returns the connection holding a charger, or ``None``.
        inflight: where the commands in flight are counted.
    """

    def __init__(
        self,
        bus: BusClient,
        gateway_id: str,
        holder_of: Callable[[str], CommandSink | None],
        inflight: InFlight,
    ) -> None:
        def counted(charger_id: str) -> CommandSink | None:
            holder = holder_of(charger_id)
            return None if holder is None else _CountedSink(holder, inflight)

        super().__init__(bus, gateway_id, counted)
        self.inflight = inflight

    async def publish_result(self, result: CommandResult) -> None:
        """Publish as ``CommandRouter.publish_result`` does, and count it."""
        try:
            await super().publish_result(result)
        finally:
            self.inflight.commands -= 1
            metrics.GATEWAY_COMMAND_RESULTS.labels(result.outcome.value).inc()


class QuietProbes(logging.Filter):
    """Drop websockets' INFO lines about the probes answered with success.

    Probes come every few seconds, each a connection that websockets logs
    twice; a failing one (a 503 from ``/readyz``) keeps its lines. The
    connections are known by id, the last ``MAX_TRACKED`` of them.
    """

    MAX_TRACKED = 1024

    def __init__(self) -> None:
        super().__init__()
        self._quiet: dict[uuid.UUID, None] = {}

    def quiet(self, connection: ServerConnection) -> None:
        """Keep ``connection``'s lines out of the log."""
        self._quiet[connection.id] = None
        if len(self._quiet) > self.MAX_TRACKED:
            del self._quiet[next(iter(self._quiet))]

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            # websockets' LoggerAdapter adds a weak proxy of the connection.
            connection_id = getattr(getattr(record, "websocket", None), "id", None)
        except ReferenceError:
            return True
        if connection_id not in self._quiet:
            return True
        if record.msg == "connection closed":
            del self._quiet[connection_id]
        return False
