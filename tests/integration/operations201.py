"""The CSMS-initiated OCPP 2.0.1 calls a test station answers outside transactions.

``OperationsCharger201`` answers every operator command as a standards-
following charging station does, from in-memory state: reset, availability,
unlock, trigger (then sends the message), clear cache, data transfer (echo
for vendor ``moovolt-tests``), the local list, charging profiles and the
composite schedule they make, reservations (a ReservationStatusUpdate
Expired at expiry), and firmware updates and log uploads, whose progress it
reports in status notifications carrying the requestId.

Every call it receives is kept as it came over the wire (``received``), and
``answers`` makes it answer an action with another status.
"""

import asyncio
import contextlib
import json
from datetime import UTC, datetime
from typing import Any

from ocpp.routing import on
from ocpp.v201 import ChargePoint, call, call_result
from ocpp.v201.enums import Action

from tests.integration.operations16 import (
    DIAGNOSTICS_STATUSES,
    FIRMWARE_STATUSES,
    NOTIFY_PAUSE_S,
    VENDOR,
    Held,
    Received,
    plain_json,
)

EVSES = 2


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class OperationsCharger201(ChargePoint):  # type: ignore[misc]
    """A 2.0.1 charging station that answers every operator command."""

    def __init__(self, charger_id: str, connection: Any, **options: Any) -> None:
        super().__init__(charger_id, connection, **options)
        self.received: list[Received] = []
        self.answers: dict[str, str] = {}
        self.local_list: dict[str, dict[str, Any]] = {}
        self.local_list_version = 0
        self.profiles: dict[int, tuple[int, dict[str, Any]]] = {}
        self.reservations: dict[int, Held] = {}
        self.firmware_statuses: tuple[str, ...] = FIRMWARE_STATUSES
        self.log_statuses: tuple[str, ...] = DIAGNOSTICS_STATUSES
        # (action, status) of every notification sent and answered
        self.notified: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.triggered: asyncio.Queue[str] = asyncio.Queue()
        self._operations: set[asyncio.Task[Any]] = set()

    async def route_message(self, raw_msg: str) -> Any:
        with contextlib.suppress(ValueError):
            frame = json.loads(raw_msg)
            if isinstance(frame, list) and len(frame) == 4 and frame[0] == 2:
                self.received.append(Received(frame[2], frame[3]))
        return await super().route_message(raw_msg)

    def calls_of(self, action: str) -> list[dict[str, Any]]:
        """Return the payloads of every ``action`` received, in order."""
        return [r.payload for r in self.received if r.action == action]

    def take_reservation(self, evse_id: int, id_token: str | None) -> int | None:
        """Return (and end) the reservation a start on ``evse_id`` uses."""
        for reservation_id, held in list(self.reservations.items()):
            if held.id_token == id_token and held.connector_id in (0, evse_id):
                del self.reservations[reservation_id]
                return reservation_id
        return None

    def _status(self, action: str, usual: str) -> str:
        return self.answers.get(action, usual)

    def _later(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._operations.add(task)
        task.add_done_callback(self._operations.discard)

    async def _notify(self, action: str, payloads: list[Any], statuses: Any) -> None:
        for payload, status in zip(payloads, statuses, strict=True):
            await asyncio.sleep(NOTIFY_PAUSE_S)
            await self.call(payload, suppress=False)
            await self.notified.put((action, status))

    # -- Device ------------------------------------------------------------------

    @on(Action.reset)  # type: ignore[untyped-decorator]
    async def on_reset(self, type: str, **_: Any) -> Any:
        return call_result.Reset(status=self._status("Reset", "Accepted"))

    @on(Action.change_availability)  # type: ignore[untyped-decorator]
    async def on_change_availability(self, operational_status: str, **_: Any) -> Any:
        status = self._status("ChangeAvailability", "Accepted")
        return call_result.ChangeAvailability(status=status)

    @on(Action.unlock_connector)  # type: ignore[untyped-decorator]
    async def on_unlock_connector(self, evse_id: int, connector_id: int) -> Any:
        usual = (
            "Unlocked" if evse_id <= EVSES and connector_id == 1 else "UnknownConnector"
        )
        return call_result.UnlockConnector(
            status=self._status("UnlockConnector", usual)
        )

    @on(Action.clear_cache)  # type: ignore[untyped-decorator]
    async def on_clear_cache(self, **_: Any) -> Any:
        return call_result.ClearCache(status=self._status("ClearCache", "Accepted"))

    @on(Action.data_transfer)  # type: ignore[untyped-decorator]
    async def on_data_transfer(
        self, vendor_id: str, message_id: str | None = None, data: Any = None, **_: Any
    ) -> Any:
        if vendor_id != VENDOR:
            return call_result.DataTransfer(status="UnknownVendorId")
        status = self._status("DataTransfer", "Accepted")
        return call_result.DataTransfer(status=status, data=data)

    @on(Action.trigger_message)  # type: ignore[untyped-decorator]
    async def on_trigger_message(
        self, requested_message: str, evse: dict[str, Any] | None = None, **_: Any
    ) -> Any:
        status = self._status("TriggerMessage", "Accepted")
        if status == "Accepted":
            evse_id = (evse or {}).get("id", 1)
            self._later(self._send_triggered(requested_message, evse_id))
        return call_result.TriggerMessage(status=status)

    async def _send_triggered(self, message: str, evse_id: int) -> None:
        now = _iso(datetime.now(UTC))
        payloads: dict[str, Any] = {
            "BootNotification": call.BootNotification(
                charging_station={"model": "TestModel", "vendorName": VENDOR},
                reason="Triggered",
            ),
            "Heartbeat": call.Heartbeat(),
            "StatusNotification": call.StatusNotification(
                timestamp=now,
                connector_status="Available",
                evse_id=evse_id,
                connector_id=1,
            ),
            "MeterValues": call.MeterValues(
                evse_id=evse_id,
                meter_value=[{"timestamp": now, "sampledValue": [{"value": 10000}]}],
            ),
            "FirmwareStatusNotification": call.FirmwareStatusNotification(
                status="Idle"
            ),
            "LogStatusNotification": call.LogStatusNotification(status="Idle"),
        }
        await asyncio.sleep(NOTIFY_PAUSE_S)
        await self.call(payloads[message], suppress=False)
        await self.triggered.put(message)

    # -- Local list ----------------------------------------------------------------

    @on(Action.get_local_list_version)  # type: ignore[untyped-decorator]
    async def on_get_local_list_version(self, **_: Any) -> Any:
        return call_result.GetLocalListVersion(version_number=self.local_list_version)

    @on(Action.send_local_list)  # type: ignore[untyped-decorator]
    async def on_send_local_list(
        self,
        version_number: int,
        update_type: str,
        local_authorization_list: list[dict[str, Any]] | None = None,
        **_: Any,
    ) -> Any:
        status = self._status("SendLocalList", "Accepted")
        if update_type == "Differential" and version_number <= self.local_list_version:
            status = "VersionMismatch"
        if status != "Accepted":
            return call_result.SendLocalList(status=status)
        if update_type == "Full":
            self.local_list = {}
        for entry in local_authorization_list or []:
            token = entry["id_token"]["id_token"]
            info = entry.get("id_token_info")
            if info is None:
                self.local_list.pop(token, None)
            else:
                self.local_list[token] = info
        self.local_list_version = version_number
        return call_result.SendLocalList(status=status)

    # -- Smart charging ------------------------------------------------------------

    @on(Action.set_charging_profile)  # type: ignore[untyped-decorator]
    async def on_set_charging_profile(
        self, evse_id: int, charging_profile: dict[str, Any], **_: Any
    ) -> Any:
        status = self._status("SetChargingProfile", "Accepted")
        if status == "Accepted":
            self.profiles[charging_profile["id"]] = (
                evse_id,
                plain_json(charging_profile),
            )
        return call_result.SetChargingProfile(status=status)

    @on(Action.clear_charging_profile)  # type: ignore[untyped-decorator]
    async def on_clear_charging_profile(
        self,
        charging_profile_id: int | None = None,
        charging_profile_criteria: dict[str, Any] | None = None,
        **_: Any,
    ) -> Any:
        criteria = charging_profile_criteria or {}

        def matches(evse_id: int, profile: dict[str, Any]) -> bool:
            if charging_profile_id is not None:
                return bool(profile["id"] == charging_profile_id)
            wanted = (
                (criteria.get("evse_id"), evse_id),
                (
                    criteria.get("charging_profile_purpose"),
                    profile["charging_profile_purpose"],
                ),
                (criteria.get("stack_level"), profile["stack_level"]),
            )
            return all(asked in (None, value) for asked, value in wanted)

        gone = [k for k, (e, p) in self.profiles.items() if matches(e, p)]
        for key in gone:
            del self.profiles[key]
        return call_result.ClearChargingProfile(
            status="Accepted" if gone else "Unknown"
        )

    @on(Action.get_composite_schedule)  # type: ignore[untyped-decorator]
    async def on_get_composite_schedule(
        self,
        duration: int,
        evse_id: int,
        charging_rate_unit: str | None = None,
        **_: Any,
    ) -> Any:
        """Answer with the highest-stack profile of the EVSE, cut to duration."""
        mine = [p for e, p in self.profiles.values() if e in (0, evse_id)]
        if not mine:
            return call_result.GetCompositeSchedule(status="Rejected")
        profile = max(mine, key=lambda p: p["stack_level"])
        schedule = profile["charging_schedule"][0]
        return call_result.GetCompositeSchedule(
            status="Accepted",
            schedule={
                "evse_id": evse_id,
                "duration": duration,
                "schedule_start": _iso(datetime.now(UTC).replace(microsecond=0)),
                "charging_rate_unit": charging_rate_unit
                or schedule["charging_rate_unit"],
                "charging_schedule_period": schedule["charging_schedule_period"],
            },
        )

    # -- Reservations --------------------------------------------------------------

    @on(Action.reserve_now)  # type: ignore[untyped-decorator]
    async def on_reserve_now(
        self,
        id: int,
        expiry_date_time: str,
        id_token: dict[str, Any],
        evse_id: int | None = None,
        **_: Any,
    ) -> Any:
        status = self._status("ReserveNow", "Accepted")
        if status == "Accepted":
            expires_at = datetime.fromisoformat(expiry_date_time)
            self.reservations[id] = Held(evse_id or 0, id_token["id_token"], expires_at)
            self._later(self._expire(id, expires_at))
        return call_result.ReserveNow(status=status)

    async def _expire(self, reservation_id: int, expires_at: datetime) -> None:
        """At expiry, end a reservation still held and say so."""
        await asyncio.sleep((expires_at - datetime.now(UTC)).total_seconds())
        if self.reservations.pop(reservation_id, None) is None:
            return
        await self.call(
            call.ReservationStatusUpdate(
                reservation_id=reservation_id, reservation_update_status="Expired"
            ),
            suppress=False,
        )
        await self.notified.put(("ReservationStatusUpdate", "Expired"))

    @on(Action.cancel_reservation)  # type: ignore[untyped-decorator]
    async def on_cancel_reservation(self, reservation_id: int, **_: Any) -> Any:
        held = self.reservations.pop(reservation_id, None)
        usual = "Rejected" if held is None else "Accepted"
        return call_result.CancelReservation(
            status=self._status("CancelReservation", usual)
        )

    # -- Firmware and logs -----------------------------------------------------------

    @on(Action.update_firmware)  # type: ignore[untyped-decorator]
    async def on_update_firmware(
        self, request_id: int, firmware: dict[str, Any], **_: Any
    ) -> Any:
        status = self._status("UpdateFirmware", "Accepted")
        if status == "Accepted":
            statuses = self.firmware_statuses
            payloads = [
                call.FirmwareStatusNotification(status=s, request_id=request_id)
                for s in statuses
            ]
            self._later(self._notify("FirmwareStatusNotification", payloads, statuses))
        return call_result.UpdateFirmware(status=status)

    @on(Action.get_log)  # type: ignore[untyped-decorator]
    async def on_get_log(
        self, log_type: str, request_id: int, log: dict[str, Any], **_: Any
    ) -> Any:
        status = self._status("GetLog", "Accepted")
        if status == "Accepted":
            statuses = self.log_statuses
            payloads = [
                call.LogStatusNotification(status=s, request_id=request_id)
                for s in statuses
            ]
            self._later(self._notify("LogStatusNotification", payloads, statuses))
        return call_result.GetLog(status=status, filename=f"log-{request_id}.txt")
