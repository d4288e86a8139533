"""A real OCPP 1.6 charger for tests, and the factory of chargers of any version.

``TestCharger`` is the ``ocpp`` library's charge-point side. It behaves as a
standards-following charger does: it accepts a remote start and then starts
the transaction itself, accepts a remote stop and then stops, and answers
GetConfiguration / ChangeConfiguration from an in-memory configuration.

It also answers every other operator command (``OperationsCharger16``:
reset, availability, trigger, local list, charging profiles, reservations,
firmware, diagnostics), keeps the calls it received as they came
(``received``), and a start on a connector it holds a reservation for names
the reservation.

It has the version-neutral surface that ``TestCharger201`` has too (``boot``,
``available``, ``authorize``, ``start_transaction``, ``meter``, ``stop``, ``send``,
``repeat``, the ``remote_started`` / ``remote_stopped`` queues, transaction
ids as strings), so that session tests run on both versions; ``connected``
opens either.
"""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import websockets
from ocpp.routing import on
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action, ChargePointErrorCode, ChargePointStatus

from tests.integration.charger201 import Booted, TestCharger201, iso
from tests.integration.operations16 import OperationsCharger16

__all__ = ["VERSIONS", "Booted", "Charger", "TestCharger", "connected", "iso"]

BASE_TIME = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
VERSIONS = ("1.6", "2.0.1")

# key -> (read-only, value)
CONFIGURATION = {
    "HeartbeatInterval": (False, "300"),
    "MeterValueSampleInterval": (False, "60"),
    "NumberOfConnectors": (True, "2"),
    "AuthorizationKey": (False, ""),  # security whitepaper: write-only
}


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


def _as_is(result: Any) -> Any:
    return result


class TestCharger(OperationsCharger16):
    """A 1.6 charger that follows the remote commands it accepts."""

    __test__ = False
    version = "1.6"

    def __init__(self, charger_id: str, connection: Any) -> None:
        super().__init__(charger_id, connection, response_timeout=30)
        self.meter_wh = 10_000
        self.transactions: dict[str, int] = {}  # transaction id -> connector
        self.remote_started: asyncio.Queue[str] = asyncio.Queue()
        self.remote_stopped: asyncio.Queue[str] = asyncio.Queue()
        self.accept_remote_start = True
        self.configuration = dict(CONFIGURATION)
        self._last: tuple[Any, str, Callable[[Any], Any]] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- Calls -----------------------------------------------------------------

    async def send(self, payload: Any, interpret: Callable[[Any], Any] = _as_is) -> Any:
        """Send a call, remembering it so that it can be repeated.

        Raises:
            OCPPError: the CSMS answered with a CALLERROR.
        """
        self._last = (payload, str(uuid.uuid4()), interpret)
        return await self.repeat()

    async def repeat(self) -> Any:
        """Send the last call again (same message id), as after a reconnect."""
        assert self._last is not None
        payload, unique_id, interpret = self._last
        return interpret(await self.call(payload, unique_id=unique_id, suppress=False))

    # -- Charger-initiated -----------------------------------------------------

    async def boot(self) -> Booted:
        result = await self.call(
            call.BootNotification(
                charge_point_model="TestModel", charge_point_vendor="moovolt-tests"
            ),
            suppress=False,
        )
        return Booted(status=result.status, interval=result.interval)

    async def available(self, connector_id: int) -> None:
        await self.call(
            call.StatusNotification(
                connector_id=connector_id,
                error_code=ChargePointErrorCode.no_error,
                status=ChargePointStatus.available,
                timestamp=iso(datetime.now(UTC)),
            ),
            suppress=False,
        )

    async def authorize(self, id_token: str) -> str:
        result = await self.call(call.Authorize(id_tag=id_token), suppress=False)
        status: str = result.id_tag_info["status"]
        return status

    async def start_transaction(
        self, connector_id: int, id_token: str, at: datetime
    ) -> tuple[str, str]:
        """Start a transaction; return its id and the verdict on the id tag."""

        def interpret(result: Any) -> tuple[str, str]:
            tx = str(result.transaction_id)
            self.transactions[tx] = connector_id
            return tx, result.id_tag_info["status"]

        started: tuple[str, str] = await self.send(
            call.StartTransaction(
                connector_id=connector_id,
                id_tag=id_token,
                meter_start=self.meter_wh,
                timestamp=iso(at),
                reservation_id=self.take_reservation(connector_id, id_token),
            ),
            interpret,
        )
        return started

    async def meter(self, transaction_id: str, at: datetime, add_wh: int) -> None:
        self.meter_wh += add_wh
        await self.send(
            call.MeterValues(
                connector_id=self.transactions[transaction_id],
                transaction_id=int(transaction_id),
                meter_value=[energy_sample(at, self.meter_wh)],
            ),
            lambda result: None,
        )

    async def stop(
        self, transaction_id: str, at: datetime, reason: str = "Local"
    ) -> str | None:
        """Stop the transaction; return the verdict on an id tag, if any."""
        status: str | None = await self.send(
            call.StopTransaction(
                meter_stop=self.meter_wh,
                timestamp=iso(at),
                transaction_id=int(transaction_id),
                reason=reason,
            ),
            lambda result: (result.id_tag_info or {}).get("status"),
        )
        return status

    # -- CSMS-initiated --------------------------------------------------------

    @on(Action.remote_start_transaction)  # type: ignore[untyped-decorator]
    async def on_remote_start(
        self, id_tag: str, connector_id: int | None = None, **_: Any
    ) -> Any:
        if not self.accept_remote_start:
            return call_result.RemoteStartTransaction(status="Rejected")
        self._spawn(self._start_after_remote(connector_id or 1, id_tag))
        return call_result.RemoteStartTransaction(status="Accepted")

    async def _start_after_remote(self, connector_id: int, id_tag: str) -> None:
        await asyncio.sleep(0.1)  # a charger answers before it acts
        tx, _ = await self.start_transaction(connector_id, id_tag, datetime.now(UTC))
        await self.remote_started.put(tx)

    @on(Action.remote_stop_transaction)  # type: ignore[untyped-decorator]
    async def on_remote_stop(self, transaction_id: int) -> Any:
        if str(transaction_id) not in self.transactions:
            return call_result.RemoteStopTransaction(status="Rejected")
        self._spawn(self._stop_after_remote(str(transaction_id)))
        return call_result.RemoteStopTransaction(status="Accepted")

    async def _stop_after_remote(self, transaction_id: str) -> None:
        await asyncio.sleep(0.1)
        await self.stop(transaction_id, datetime.now(UTC), reason="Remote")
        await self.remote_stopped.put(transaction_id)

    @on(Action.get_configuration)  # type: ignore[untyped-decorator]
    async def on_get_configuration(self, key: list[str] | None = None) -> Any:
        wanted = key or list(self.configuration)
        known = {k: self.configuration[k] for k in wanted if k in self.configuration}
        return call_result.GetConfiguration(
            configuration_key=[
                {"key": k, "readonly": readonly, "value": value}
                for k, (readonly, value) in known.items()
            ],
            unknown_key=[k for k in wanted if k not in known] or None,
        )

    @on(Action.change_configuration)  # type: ignore[untyped-decorator]
    async def on_change_configuration(self, key: str, value: str) -> Any:
        if key not in self.configuration:
            return call_result.ChangeConfiguration(status="NotSupported")
        if self.configuration[key][0]:
            return call_result.ChangeConfiguration(status="Rejected")
        self.configuration[key] = (False, value)
        return call_result.ChangeConfiguration(status="Accepted")

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


Charger = TestCharger | TestCharger201

# Subprotocol and charger class of each OCPP version.
KINDS: dict[str, tuple[str, type[Charger]]] = {
    "1.6": ("ocpp1.6", TestCharger),
    "2.0.1": ("ocpp2.0.1", TestCharger201),
}


@contextlib.asynccontextmanager
async def connected(
    url: str, charger_id: str, version: str = "1.6"
) -> AsyncIterator[Charger]:
    """Connect a test charger of OCPP ``version`` to ``url``; run its receive loop."""
    subprotocol, kind = KINDS[version]
    async with websockets.connect(url, subprotocols=[subprotocol]) as ws:  # type: ignore[list-item]
        charger = kind(charger_id, ws)
        loop = asyncio.create_task(charger.start())
        try:
            yield charger
        finally:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await loop
