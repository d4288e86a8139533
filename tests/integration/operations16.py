"""The CSMS-initiated OCPP 1.6 calls a test charger answers outside transactions.

``OperationsCharger16`` answers every operator command as a standards-
following charger does, from in-memory state: reset, availability, unlock,
trigger (then sends the message), clear cache, data transfer (echo for vendor
``moovolt-tests``), the local list, charging profiles and the composite
schedule they make, reservations, and firmware updates and diagnostics
uploads, whose progress it then reports in status notifications.

Every call it receives is kept as it came over the wire (``received``), and
``answers`` makes it answer an action with another status.
"""

import asyncio
import contextlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action

VENDOR = "moovolt-tests"
FIRMWARE_STATUSES = ("Downloading", "Downloaded", "Installing", "Installed")
DIAGNOSTICS_STATUSES = ("Uploading", "Uploaded")
NOTIFY_PAUSE_S = 0.05


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def plain_json(payload: dict[str, Any]) -> dict[str, Any]:
    """Return ``payload`` in plain JSON types.

    The ``ocpp`` library's schema check turns floats into Decimals in place.
    """
    plain: dict[str, Any] = json.loads(json.dumps(payload, default=float))
    return plain


@dataclass(frozen=True)
class Received:
    """A CSMS call as it came over the wire."""

    action: str
    payload: dict[str, Any]


@dataclass
class Held:
    """A reservation the charger holds."""

    connector_id: int
    id_token: str
    expires_at: datetime


class OperationsCharger16(ChargePoint):  # type: ignore[misc]
    """A 1.6 charge point that answers every operator command."""

    def __init__(self, charger_id: str, connection: Any, **options: Any) -> None:
        super().__init__(charger_id, connection, **options)
        self.received: list[Received] = []
        self.answers: dict[str, str] = {}
        self.local_list: dict[str, dict[str, Any]] = {}
        self.local_list_version = 0
        self.profiles: dict[int, tuple[int, dict[str, Any]]] = {}
        self.reservations: dict[int, Held] = {}
        self.firmware_statuses: tuple[str, ...] = FIRMWARE_STATUSES
        self.diagnostics_statuses: tuple[str, ...] = DIAGNOSTICS_STATUSES
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

    def take_reservation(self, connector_id: int, id_token: str) -> int | None:
        """Return (and end) the reservation a start on ``connector_id`` uses."""
        for reservation_id, held in list(self.reservations.items()):
            if held.id_token == id_token and held.connector_id in (0, connector_id):
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
    async def on_reset(self, type: str) -> Any:
        return call_result.Reset(status=self._status("Reset", "Accepted"))

    @on(Action.change_availability)  # type: ignore[untyped-decorator]
    async def on_change_availability(self, connector_id: int, type: str) -> Any:
        status = self._status("ChangeAvailability", "Accepted")
        return call_result.ChangeAvailability(status=status)

    @on(Action.unlock_connector)  # type: ignore[untyped-decorator]
    async def on_unlock_connector(self, connector_id: int) -> Any:
        usual = "Unlocked" if connector_id <= 2 else "NotSupported"
        return call_result.UnlockConnector(
            status=self._status("UnlockConnector", usual)
        )

    @on(Action.clear_cache)  # type: ignore[untyped-decorator]
    async def on_clear_cache(self) -> Any:
        return call_result.ClearCache(status=self._status("ClearCache", "Accepted"))

    @on(Action.data_transfer)  # type: ignore[untyped-decorator]
    async def on_data_transfer(
        self, vendor_id: str, message_id: str | None = None, data: Any = None
    ) -> Any:
        if vendor_id != VENDOR:
            return call_result.DataTransfer(status="UnknownVendorId")
        status = self._status("DataTransfer", "Accepted")
        return call_result.DataTransfer(status=status, data=data)

    @on(Action.trigger_message)  # type: ignore[untyped-decorator]
    async def on_trigger_message(
        self, requested_message: str, connector_id: int | None = None
    ) -> Any:
        status = self._status("TriggerMessage", "Accepted")
        if status == "Accepted":
            self._later(self._send_triggered(requested_message, connector_id or 1))
        return call_result.TriggerMessage(status=status)

    async def _send_triggered(self, message: str, connector_id: int) -> None:
        now = datetime.now(UTC)
        payloads: dict[str, Any] = {
            "BootNotification": call.BootNotification(
                charge_point_model="TestModel", charge_point_vendor=VENDOR
            ),
            "Heartbeat": call.Heartbeat(),
            "StatusNotification": call.StatusNotification(
                connector_id=connector_id,
                error_code="NoError",
                status="Available",
                timestamp=_iso(now),
            ),
            "MeterValues": call.MeterValues(
                connector_id=connector_id,
                meter_value=[
                    {"timestamp": _iso(now), "sampledValue": [{"value": "10000"}]}
                ],
            ),
            "FirmwareStatusNotification": call.FirmwareStatusNotification(
                status="Idle"
            ),
            "DiagnosticsStatusNotification": call.DiagnosticsStatusNotification(
                status="Idle"
            ),
        }
        await asyncio.sleep(NOTIFY_PAUSE_S)
        await self.call(payloads[message], suppress=False)
        await self.triggered.put(message)

    # -- Local list ----------------------------------------------------------------

    @on(Action.get_local_list_version)  # type: ignore[untyped-decorator]
    async def on_get_local_list_version(self) -> Any:
        return call_result.GetLocalListVersion(list_version=self.local_list_version)

    @on(Action.send_local_list)  # type: ignore[untyped-decorator]
    async def on_send_local_list(
        self,
        list_version: int,
        update_type: str,
        local_authorization_list: list[dict[str, Any]] | None = None,
    ) -> Any:
        status = self._status("SendLocalList", "Accepted")
        if update_type == "Differential" and list_version <= self.local_list_version:
            status = "VersionMismatch"
        if status != "Accepted":
            return call_result.SendLocalList(status=status)
        if update_type == "Full":
            self.local_list = {}
        for entry in local_authorization_list or []:
            info = entry.get("id_tag_info")
            if info is None:
                self.local_list.pop(entry["id_tag"], None)
            else:
                self.local_list[entry["id_tag"]] = info
        self.local_list_version = list_version
        return call_result.SendLocalList(status=status)

    # -- Smart charging ------------------------------------------------------------

    @on(Action.set_charging_profile)  # type: ignore[untyped-decorator]
    async def on_set_charging_profile(
        self, connector_id: int, cs_charging_profiles: dict[str, Any]
    ) -> Any:
        status = self._status("SetChargingProfile", "Accepted")
        if status == "Accepted":
            profile_id = cs_charging_profiles["charging_profile_id"]
            self.profiles[profile_id] = (connector_id, plain_json(cs_charging_profiles))
        return call_result.SetChargingProfile(status=status)

    @on(Action.clear_charging_profile)  # type: ignore[untyped-decorator]
    async def on_clear_charging_profile(
        self,
        id: int | None = None,
        connector_id: int | None = None,
        charging_profile_purpose: str | None = None,
        stack_level: int | None = None,
    ) -> Any:
        def matches(connector: int, profile: dict[str, Any]) -> bool:
            if id is not None:
                return bool(profile["charging_profile_id"] == id)
            wanted = (
                (connector_id, connector),
                (charging_profile_purpose, profile["charging_profile_purpose"]),
                (stack_level, profile["stack_level"]),
            )
            return all(asked in (None, value) for asked, value in wanted)

        gone = [k for k, (c, p) in self.profiles.items() if matches(c, p)]
        for key in gone:
            del self.profiles[key]
        return call_result.ClearChargingProfile(
            status="Accepted" if gone else "Unknown"
        )

    @on(Action.get_composite_schedule)  # type: ignore[untyped-decorator]
    async def on_get_composite_schedule(
        self, connector_id: int, duration: int, charging_rate_unit: str | None = None
    ) -> Any:
        """Answer with the highest-stack profile of the connector, cut to duration."""
        mine = [p for c, p in self.profiles.values() if c in (0, connector_id)]
        if not mine:
            return call_result.GetCompositeSchedule(status="Rejected")
        profile = max(mine, key=lambda p: p["stack_level"])
        schedule = dict(profile["charging_schedule"])
        schedule["duration"] = duration
        schedule.pop("start_schedule", None)
        return call_result.GetCompositeSchedule(
            status="Accepted",
            connector_id=connector_id,
            schedule_start=_iso(datetime.now(UTC).replace(microsecond=0)),
            charging_schedule=schedule,
        )

    # -- Reservations --------------------------------------------------------------

    @on(Action.reserve_now)  # type: ignore[untyped-decorator]
    async def on_reserve_now(
        self,
        connector_id: int,
        expiry_date: str,
        id_tag: str,
        reservation_id: int,
        parent_id_tag: str | None = None,
    ) -> Any:
        status = self._status("ReserveNow", "Accepted")
        if status == "Accepted":
            self.reservations[reservation_id] = Held(
                connector_id, id_tag, datetime.fromisoformat(expiry_date)
            )
        return call_result.ReserveNow(status=status)

    @on(Action.cancel_reservation)  # type: ignore[untyped-decorator]
    async def on_cancel_reservation(self, reservation_id: int) -> Any:
        held = self.reservations.pop(reservation_id, None)
        usual = "Rejected" if held is None else "Accepted"
        return call_result.CancelReservation(
            status=self._status("CancelReservation", usual)
        )

    # -- Firmware and diagnostics ----------------------------------------------------

    @on(Action.update_firmware)  # type: ignore[untyped-decorator]
    async def on_update_firmware(
        self, location: str, retrieve_date: str, **_: Any
    ) -> Any:
        statuses = self.firmware_statuses
        payloads = [call.FirmwareStatusNotification(status=s) for s in statuses]
        self._later(self._notify("FirmwareStatusNotification", payloads, statuses))
        return call_result.UpdateFirmware()

    @on(Action.get_diagnostics)  # type: ignore[untyped-decorator]
    async def on_get_diagnostics(self, location: str, **_: Any) -> Any:
        statuses = self.diagnostics_statuses
        payloads = [call.DiagnosticsStatusNotification(status=s) for s in statuses]
        self._later(self._notify("DiagnosticsStatusNotification", payloads, statuses))
        return call_result.GetDiagnostics(file_name=f"diagnostics-{self.id}.log")
