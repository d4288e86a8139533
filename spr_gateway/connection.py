"""One charger's WebSocket: the read loop and its two workers.

The read loop never waits on the SG: it answers unreadable frames itself,
hands CALLs to a worker that answers them in arrival order, and hands
CALLRESULT/CALLERROR frames to the command runner at once, so that a charger
can answer a CSMS call while one of its own calls waits for a decision.

Each frame the charger sends on its own spends from its ``FrameBudget``
(``spr_gateway.limits``): a CALL over the budget is refused at once with a
GenericError and never reaches the SG, and a frame refused is not logged,
so that a flood floods neither the SG nor the log.
"""

import asyncio
import logging
import time
from datetime import datetime

from ocpp.messages import Call, CallError, CallResult
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode

from bus.contract import CommandEnvelope, utcnow
from spr_gateway.commands import CommandRouter
from spr_gateway.dialect import Dialect
from spr_gateway.framing import UNKNOWN_ID, FrameError, error_frame, parse
from spr_gateway.inbound import CallHandler
from spr_gateway.limits import FrameBudget, Limits, Ticket, UnreadableRun, Verdict
from spr_gateway.outbound import CommandRunner
from spr_gateway.rpc import SgClient

logger = logging.getLogger(__name__)

# Calls read but not yet answered. A charger keeps one call outstanding, so
# this only fills when one misbehaves; then reading waits, which pushes back.
MAX_PENDING_CALLS = 8

# Neither OCPP version has a code for "too many calls". GenericError is the
# spec's code for any error not covered by the others; InternalError would
# claim a fault of the CSMS and reads the same as a real one in the charger's
# log. Both versions retry a transaction message answered with a CALLERROR.
RATE_LIMITED_CODE = "GenericError"
RATE_LIMITED = "Rate limit exceeded, retry later"
UNREADABLE = "Too many unreadable frames"


class ChargerConnection:
    """Serve one charger's socket until it closes.

    Args:
        ws: the accepted WebSocket.
        charger_id: the charge point id from the URL.
        dialect: the OCPP version negotiated at the handshake.
        sg: the link to the SG.
        router: publishes command results.
        gateway_id: this gateway's id.
        call_timeout_s: how long the charger has to answer a CSMS call.
        limits: what the charger may send.
    """

    def __init__(
        self,
        ws: ServerConnection,
        charger_id: str,
        dialect: Dialect,
        *,
        sg: SgClient,
        router: CommandRouter,
        gateway_id: str,
        call_timeout_s: float,
        limits: Limits,
    ) -> None:
        self.ws = ws
        self.dialect = dialect
        self._charger_id = charger_id
        # Each call with when it arrived and when it may be handled.
        self._calls: asyncio.Queue[tuple[Call, datetime, float]] = asyncio.Queue(
            MAX_PENDING_CALLS
        )
        self._budget = FrameBudget(limits, time.monotonic())
        self._unreadable = UnreadableRun(limits.max_unreadable)
        # Set when the charger has spent its patience; the read loop closes.
        self._close_with: tuple[CloseCode, str] | None = None
        self._handler = CallHandler(charger_id, dialect, sg, gateway_id, self._send)
        self._commands = CommandRunner(
            charger_id, dialect, self._send, router.publish_result, call_timeout_s
        )
        self._extra = {"charger_id": charger_id}

    @property
    def charger_id(self) -> str:
        return self._charger_id

    def submit(self, envelope: CommandEnvelope) -> bool:
        """Queue an SG command for this charger; False if closing."""
        return self._commands.submit(envelope)

    async def run(self) -> None:
        """Read frames until the socket closes, then finish every command.

        Commands still queued or in flight end as ``disconnected``; this
        returns once their results are published.
        """
        answering = asyncio.create_task(self._answer_calls())
        commanding = asyncio.create_task(self._commands.run())
        try:
            await self._read()
        finally:
            self._commands.close()
            answering.cancel()
            await asyncio.gather(answering, commanding, return_exceptions=True)

    async def close(self, code: int, reason: str) -> None:
        """Close the socket; ``run`` then winds down."""
        await self.ws.close(code, reason)

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                await self._on_frame(raw, utcnow())
                if self._close_with is not None:
                    # Frames still buffered are dropped with the socket.
                    await self.close(*self._close_with)
                    return
        except ConnectionClosed:
            pass

    async def _on_frame(self, raw: str | bytes, received_at: datetime) -> None:
        logger.debug("received %.200s", raw, extra=self._extra)
        try:
            message = parse(raw)
        except FrameError as exc:
            await self._on_broken_frame(exc)
            return

        self._unreadable.clear()
        if isinstance(message, Call):
            await self._on_call(message, received_at)
            return
        if self._commands.on_response(message):
            return
        ticket = self._spend()
        if ticket.verdict is Verdict.ADMIT:
            logger.info(
                "answer %s matches no call in flight",
                message.unique_id,
                extra=self._extra,
            )

    async def _on_call(self, call: Call, received_at: datetime) -> None:
        ticket = self._spend()
        match ticket.verdict:
            case Verdict.ADMIT:
                ready_at = time.monotonic() + ticket.wait_s
                await self._calls.put((call, received_at, ready_at))
            case Verdict.REFUSE | Verdict.FLOOD:
                await self._send(
                    error_frame(call.unique_id, RATE_LIMITED_CODE, RATE_LIMITED)
                )
            case Verdict.CLOSE:
                pass  # the socket closes; an answer would not be read

    async def _on_broken_frame(self, exc: FrameError) -> None:
        ticket = self._spend()
        if ticket.verdict is Verdict.CLOSE:
            return
        loud = ticket.verdict is Verdict.ADMIT
        if exc.message_type_id in (
            CallResult.message_type_id,
            CallError.message_type_id,
        ):
            # Answering an answer invites a loop; the call in flight, if this
            # was meant for it, runs into its timeout.
            if loud:
                logger.info(
                    "unreadable answer dropped: %s", exc.detail, extra=self._extra
                )
        else:
            # OCPP-J 2.0.1 answers a frame whose unique id cannot be read with
            # id "-1"; 1.6 says nothing, and the same keeps the socket open.
            unique_id = exc.unique_id or UNKNOWN_ID
            code = self.dialect.frame_faults[exc.fault]
            if loud:
                logger.info("unreadable frame: %s", exc.detail, extra=self._extra)
            await self._send(error_frame(unique_id, code, exc.detail))

        if self._unreadable.strike():
            logger.warning(
                "closing after %d unreadable frames in a row",
                self._unreadable.count,
                extra=self._extra,
            )
            self._close_with = (CloseCode.PROTOCOL_ERROR, UNREADABLE)

    def _spend(self) -> Ticket:
        """Spend a token on a frame; log a flood once, close one that lasts."""
        now = time.monotonic()
        ticket = self._budget.take(now)
        limits = self._budget.limits
        if ticket.verdict is Verdict.FLOOD:
            logger.warning(
                "over %g frames/s (burst %d): refusing until it slows down",
                limits.rate_per_s,
                limits.burst,
                extra=self._extra,
            )
        elif ticket.verdict is Verdict.CLOSE:
            logger.warning(
                "closing after flooding for %.1f s: %d frames refused",
                self._budget.flood_s(now),
                self._budget.refused,
                extra=self._extra,
            )
            self._close_with = (CloseCode.POLICY_VIOLATION, RATE_LIMITED)
        return ticket

    async def _answer_calls(self) -> None:
        while True:
            call, received_at, ready_at = await self._calls.get()
            # A call over the rate waits for its token: the charger slows down.
            delay = ready_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                await self._handler.handle(call, received_at)
            except ConnectionClosed:
                return
            except Exception:
                # handle() answers every failure it knows; this is a bug, and
                # the next call still deserves an answer.
                logger.exception(
                    "call %s unanswered", call.unique_id, extra=self._extra
                )

    async def _send(self, frame: str) -> None:
        logger.debug("sending %.200s", frame, extra=self._extra)
        await self.ws.send(frame)
