"""The WebSocket side of the gateway: handshake, admission, connection lifetime.

The handshake is refused with an HTTP status before the upgrade: 404 outside
the path prefix or for a charger the SG does not know, 400 for a bad id or no
supported subprotocol, 401 for bad credentials, 403 for a client certificate
of another charge point or a connection below the charger's security profile,
503 when the SG does not answer or the gateway is draining. An admitted
charger holds its routing key for as long as its socket lives; a second socket
with the same id replaces the first (newest wins). A plain HTTP GET of a probe
(``spr_gateway.health``) is answered before any of this.
"""

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.frames import CloseCode
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from bus.contract import (
    ChargerConnecting,
    ChargerDisconnected,
    ConnectDecision,
    Event,
    EventEnvelope,
)
from moovolt import metrics
from moovolt.settings import Settings
from spr_gateway import handshake, tls
from spr_gateway.commands import CommandRouter
from spr_gateway.connection import ChargerConnection
from spr_gateway.dialect import Dialect
from spr_gateway.health import GatewayHealth
from spr_gateway.limits import Limits
from spr_gateway.registry import ChargerRegistry
from spr_gateway.rpc import BusUnavailable, DecisionTimeout, SgClient

logger = logging.getLogger(__name__)

REPLACED = "Replaced by a newer connection"
SHUTTING_DOWN = "Server is shutting down.\n"


@dataclass(frozen=True, slots=True)
class Admission:
    """What the handshake established about an admitted charger."""

    charger_id: str
    dialect: Dialect


class Gateway:
    """Admit chargers at the handshake and serve their sockets.

    Args:
        settings: the gateway's settings.
        dialects: the supported OCPP versions, most preferred first.
        sg: the link to the SG.
        router: the commands consumer and results publisher.
        registry: the chargers this gateway holds.
        health: the gateway's probes and drain; one of its own if None.
    """

    def __init__(
        self,
        settings: Settings,
        dialects: Sequence[Dialect],
        sg: SgClient,
        router: CommandRouter,
        registry: ChargerRegistry[ChargerConnection],
        health: GatewayHealth | None = None,
    ) -> None:
        self.settings = settings
        self.dialects = {dialect.subprotocol: dialect for dialect in dialects}
        self.sg = sg
        self.router = router
        self.registry = registry
        self.health = health or GatewayHealth(sg.bus)
        # Admitted handshakes whose handler has not started yet, each with a
        # watcher that tells the SG if the handler never comes.
        self._admitted: dict[ServerConnection, tuple[Admission, asyncio.Task[None]]]
        self._admitted = {}
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def subprotocols(self) -> list[Subprotocol]:
        """The subprotocols to offer, most preferred first."""
        return [Subprotocol(name) for name in self.dialects]

    async def process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        """Answer a probe, or admit or refuse a handshake (websockets hook)."""
        probe = await self.health.respond(connection, request)
        if probe is not None:
            return probe

        try:
            if self.health.draining:
                raise handshake.HandshakeRefused(
                    HTTPStatus.SERVICE_UNAVAILABLE, SHUTTING_DOWN
                )
            admission = await self._admit(connection, request)
        except handshake.HandshakeRefused as refused:
            metrics.GATEWAY_HANDSHAKES.labels("refused", str(int(refused.status))).inc()
            logger.info(
                "handshake for %.100s refused: %d",
                request.path,
                refused.status,
                extra={"remote_address": _host(connection)},
            )
            response = connection.respond(refused.status, refused.body)
            if refused.challenge:
                response.headers["WWW-Authenticate"] = handshake.BASIC_CHALLENGE
            return response
        metrics.GATEWAY_HANDSHAKES.labels("accepted", "101").inc()
        watcher = asyncio.create_task(self._forget_if_unserved(connection))
        self._admitted[connection] = (admission, watcher)
        return None

    async def handler(self, ws: ServerConnection) -> None:
        """Serve an admitted charger's socket until it closes (websockets hook)."""
        entry = self._admitted.pop(ws, None)
        if entry is None:
            await ws.close(CloseCode.INTERNAL_ERROR, "Not admitted")
            return
        admission, watcher = entry
        watcher.cancel()
        charger_id = admission.charger_id
        extra = {"charger_id": charger_id}
        connection = ChargerConnection(
            ws,
            charger_id,
            admission.dialect,
            sg=self.sg,
            router=self.router,
            gateway_id=self.settings.gateway_id,
            call_timeout_s=self.settings.call_timeout_s,
            limits=Limits.from_settings(self.settings),
        )
        previous = self.registry.claim(connection)
        connections = metrics.GATEWAY_CONNECTIONS.labels(
            admission.dialect.version.value
        )
        connections.inc()
        try:
            await self._serve(connection, previous)
        finally:
            connections.dec()
            code = _close_code(ws)
            if self.registry.release(connection):
                await self._unbind(charger_id)
                await self._tell(admission, ChargerDisconnected(close_code=code))
            logger.info("charger %s disconnected: %s", charger_id, code, extra=extra)

    async def _serve(
        self, connection: ChargerConnection, previous: ChargerConnection | None
    ) -> None:
        charger_id = connection.charger_id
        extra = {"charger_id": charger_id}
        if previous is not None:
            logger.info("charger %s replaced its socket", charger_id, extra=extra)
            # In the background: a dead peer can hold a close for close_timeout.
            task = asyncio.create_task(
                previous.close(CloseCode.NORMAL_CLOSURE, REPLACED)
            )
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        try:
            await self.router.sync(charger_id)
        except Exception as exc:
            # Without its binding no command could reach the charger; closing
            # makes it reconnect, maybe to a gateway whose bus is up.
            logger.warning("charger %s not bound: %s", charger_id, exc, extra=extra)
            await connection.close(CloseCode.INTERNAL_ERROR, "CSMS unavailable")
            return
        logger.info(
            "charger %s connected with %s",
            charger_id,
            connection.dialect.subprotocol,
            extra=extra,
        )
        await connection.run()

    async def _admit(self, connection: ServerConnection, request: Request) -> Admission:
        charger_id = handshake.charger_id_from_path(
            request.path, self.settings.gateway_path
        )
        profile = tls.proven_profile(
            connection.transport.get_extra_info("ssl_object"), charger_id
        )
        headers: Headers = request.headers
        subprotocol = handshake.choose_subprotocol(
            headers.get_all("Sec-WebSocket-Protocol"), list(self.dialects)
        )
        password = handshake.basic_auth_password(
            headers.get_all("Authorization"), charger_id
        )
        admission = Admission(charger_id, self.dialects[subprotocol])
        event = ChargerConnecting(
            remote_address=_host(connection),
            password=password,
            security_profile=profile,
        )
        try:
            decision = await self.sg.ask(self._envelope(admission, event))
        except (DecisionTimeout, BusUnavailable) as exc:
            logger.warning(
                "no connect decision for %s: %r",
                charger_id,
                exc,
                extra={"charger_id": charger_id},
            )
            raise handshake.HandshakeRefused(
                HTTPStatus.SERVICE_UNAVAILABLE, "Service Unavailable\n"
            ) from None
        if not isinstance(decision, ConnectDecision):
            logger.warning(
                "unusable connect decision for %s: %s",
                charger_id,
                decision.kind,
                extra={"charger_id": charger_id},
            )
            raise handshake.HandshakeRefused(
                HTTPStatus.SERVICE_UNAVAILABLE, "Service Unavailable\n"
            )
        if not decision.accepted:
            raise handshake.refusal(decision)
        return admission

    async def close(self) -> None:
        """Cancel the background work left after the server has closed."""
        tasks = [watcher for _, watcher in self._admitted.values()]
        tasks += self._closing
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _forget_if_unserved(self, connection: ServerConnection) -> None:
        # An upgrade can still fail after admission (a bad request, the peer
        # leaving during the SG's answer, shutdown). The SG was told that the
        # charger is connecting, so it must hear that it is not.
        await connection.wait_closed()
        entry = self._admitted.pop(connection, None)
        if entry is not None:
            await self._tell(entry[0], ChargerDisconnected())

    async def _unbind(self, charger_id: str) -> None:
        try:
            await self.router.sync(charger_id)
        except Exception as exc:
            # A stale binding only costs dropped commands; the queue's
            # deletion with this gateway's connection removes it anyway.
            logger.warning(
                "charger %s not unbound: %s",
                charger_id,
                exc,
                extra={"charger_id": charger_id},
            )

    async def _tell(self, admission: Admission, event: Event) -> None:
        try:
            await self.sg.tell(self._envelope(admission, event))
        except BusUnavailable as exc:
            logger.warning(
                "%s of %s not published: %s",
                event.kind,
                admission.charger_id,
                exc,
                extra={"charger_id": admission.charger_id},
            )

    def _envelope(self, admission: Admission, event: Event) -> EventEnvelope:
        return EventEnvelope(
            message_id=str(uuid.uuid4()),
            charger_id=admission.charger_id,
            ocpp_version=admission.dialect.version,
            gateway_id=self.settings.gateway_id,
            event=event,
        )


def _close_code(ws: ServerConnection) -> int | None:
    """The code that ended the connection: ours when we closed it first.

    ``close_code`` is the code received, 1006 when the gateway failed the
    connection (an oversized or invalid frame) and the peer never answered.
    """
    protocol = ws.protocol
    if protocol.close_sent is not None and protocol.close_rcvd is None:
        return protocol.close_sent.code
    return ws.close_code


def _host(connection: ServerConnection) -> str:
    address = connection.remote_address
    if isinstance(address, tuple) and address:
        return str(address[0])
    return ""
