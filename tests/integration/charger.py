"""A real OCPP 1.6 charger for tests: the ``ocpp`` library's charge-point side.

It behaves as a standards-following charger does: it accepts a remote start
and then starts the transaction itself, accepts a remote stop and then stops.
"""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import (
    Action,
    ChargePointErrorCode,
    ChargePointStatus,
    RemoteStartStopStatus,
)

BASE_TIME = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def energy_sample(moment: datetime, wh: int) -> dict[str, Any]:
    """A MeterValue element with one imported-energy register reading."""
    return {
        "timestamp": iso(moment),
        "sampledValue": [
            {
                "value": str(wh),
                "measurand": "Energy.Active.Import.Register",
                "unit": "Wh",
                "context": "Sample.Periodic",
            }
        ],
    }


class TestCharger(ChargePoint):  # type: ignore[misc]
    """A 1.6 charger that follows the remote commands it accepts."""

    __test__ = False

    def __init__(self, charger_id: str, connection: Any) -> None:
        super().__init__(charger_id, connection, response_timeout=30)
        self.meter_wh = 10_000
        self.transactions: dict[int, int] = {}  # transaction id -> connector
        self.remote_started: asyncio.Queue[int] = asyncio.Queue()
        self.remote_stopped: asyncio.Queue[int] = asyncio.Queue()
        self.accept_remote_start = True
        self._last: tuple[Any, str] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- charger-initiated -----------------------------------------------------

    async def send(self, payload: Any) -> Any:
        """Send a call, remembering it so that it can be repeated."""
        unique_id = str(uuid.uuid4())
        self._last = (payload, unique_id)
        return await self.call(payload, unique_id=unique_id)

    async def repeat(self) -> Any:
        """Send the last call again, as a charger does after a reconnect."""
        assert self._last is not None
        payload, unique_id = self._last
        return await self.call(payload, unique_id=unique_id)

    async def boot(self) -> Any:
        return await self.call(
            call.BootNotification(
                charge_point_model="TestModel", charge_point_vendor="moovolt-tests"
            )
        )

    async def status(self, connector_id: int, status: ChargePointStatus) -> Any:
        return await self.call(
            call.StatusNotification(
                connector_id=connector_id,
                error_code=ChargePointErrorCode.no_error,
                status=status,
                timestamp=iso(datetime.now(UTC)),
            )
        )

    async def authorize(self, id_tag: str) -> Any:
        return await self.call(call.Authorize(id_tag=id_tag))

    async def start_transaction(
        self, connector_id: int, id_tag: str, at: datetime
    ) -> Any:
        result = await self.send(
            call.StartTransaction(
                connector_id=connector_id,
                id_tag=id_tag,
                meter_start=self.meter_wh,
                timestamp=iso(at),
            )
        )
        self.transactions[result.transaction_id] = connector_id
        return result

    async def meter(self, transaction_id: int, at: datetime, add_wh: int) -> Any:
        self.meter_wh += add_wh
        return await self.send(
            call.MeterValues(
                connector_id=self.transactions[transaction_id],
                transaction_id=transaction_id,
                meter_value=[energy_sample(at, self.meter_wh)],
            )
        )

    async def stop_transaction(
        self, transaction_id: int, at: datetime, reason: str = "Local"
    ) -> Any:
        return await self.send(
            call.StopTransaction(
                meter_stop=self.meter_wh,
                timestamp=iso(at),
                transaction_id=transaction_id,
                reason=reason,
            )
        )

    # -- CSMS-initiated --------------------------------------------------------

    @on(Action.remote_start_transaction)
    async def on_remote_start(
        self, id_tag: str, connector_id: int | None = None, **_: Any
    ) -> Any:
        if not self.accept_remote_start:
            return call_result.RemoteStartTransaction(
                status=RemoteStartStopStatus.rejected
            )
        self._spawn(self._start_after_remote(connector_id or 1, id_tag))
        return call_result.RemoteStartTransaction(status=RemoteStartStopStatus.accepted)

    async def _start_after_remote(self, connector_id: int, id_tag: str) -> None:
        await asyncio.sleep(0.1)  # a charger answers before it acts
        result = await self.start_transaction(connector_id, id_tag, datetime.now(UTC))
        await self.remote_started.put(result.transaction_id)

    @on(Action.remote_stop_transaction)
    async def on_remote_stop(self, transaction_id: int) -> Any:
        if transaction_id not in self.transactions:
            return call_result.RemoteStopTransaction(
                status=RemoteStartStopStatus.rejected
            )
        self._spawn(self._stop_after_remote(transaction_id))
        return call_result.RemoteStopTransaction(status=RemoteStartStopStatus.accepted)

    async def _stop_after_remote(self, transaction_id: int) -> None:
        await asyncio.sleep(0.1)
        await self.stop_transaction(transaction_id, datetime.now(UTC), reason="Remote")
        await self.remote_stopped.put(transaction_id)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


@contextlib.asynccontextmanager
async def connected(url: str, charger_id: str) -> AsyncIterator[TestCharger]:
    """Connect a TestCharger to ``url`` and run its receive loop."""
    async with websockets.connect(f"{url}", subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
        charger = TestCharger(charger_id, ws)
        loop = asyncio.create_task(charger.start())
        try:
            yield charger
        finally:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await loop
