"""A real OCPP 2.0.1 charger for tests: the ``ocpp`` library's charging station.

It behaves as a standards-following 2.0.1 charging station does: it names its
own transactions (UUIDs) and numbers their TransactionEvents from 0, retries a
transaction event the CSMS answered with a CALLERROR, accepts a remote start
and then starts the transaction itself with the ``remoteStartId``, accepts a
remote stop and then ends the transaction, and answers device-model requests
(GetVariables, SetVariables, GetBaseReport then NotifyReport) from an
in-memory device model. It answers every other operator command too
(``OperationsCharger201``: reset, availability, trigger, local list, charging
profiles, reservations, firmware, logs), keeps the calls it received as they
came (``received``), and a start on an EVSE it holds a reservation for names
the reservation.

Its surface is the one ``tests.integration.charger.TestCharger`` (1.6) has, so
that session tests run on both versions; ``start_without_token`` and
``authorize_in_transaction`` exist only here.
"""

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ocpp.exceptions import OCPPError
from ocpp.routing import on
from ocpp.v201 import call, call_result
from ocpp.v201.enums import Action

from tests.integration.operations201 import OperationsCharger201

TOKEN_TYPE = "ISO14443"
ENERGY = "Energy.Active.Import.Register"

# 2.0.1 TriggerReason of an Ended event, by the stoppedReason it carries.
STOP_TRIGGERS = {
    "Local": "StopAuthorized",
    "Remote": "RemoteStop",
    "DeAuthorized": "Deauthorized",
    "EVDisconnected": "EVCommunicationLost",
    "TimeLimitReached": "TimeLimitReached",
    "EnergyLimitReached": "EnergyLimitReached",
}


def iso(moment: datetime) -> str:
    """Return ``moment`` as an OCPP date-time in UTC."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Booted:
    """The CSMS's answer to a BootNotification, in either version."""

    status: str
    interval: int


# -- Device model --------------------------------------------------------------

# component[:instance][@evse[.connector]], variable[:instance], mutability,
# dataType, unit, values: the Actual value ("-": none to tell), then Type=value.
DEVICE_MODEL = """
ChargingStation   Model                        ReadOnly  string     - TestModel
ChargingStation   VendorName                   ReadOnly  string     - moovolt-tests
ChargingStation   AvailabilityState            ReadOnly  OptionList - Available
OCPPCommCtrlr     HeartbeatInterval            ReadWrite integer    s 300
OCPPCommCtrlr     MessageTimeout:Default       ReadOnly  integer    s 30
DeviceDataCtrlr   ItemsPerMessage:GetVariables ReadOnly  integer    - 20
DeviceDataCtrlr   ItemsPerMessage:SetVariables ReadOnly  integer    - 20
SecurityCtrlr     SecurityProfile              ReadOnly  integer    - 1
SecurityCtrlr     BasicAuthPassword            WriteOnly string     - -
SampledDataCtrlr  TxUpdatedInterval            ReadWrite integer    s 60
AuthCtrlr         AuthorizeRemoteStart         ReadWrite boolean    - false
TokenReader:Front Enabled                      ReadWrite boolean    - true
EVSE@1            AvailabilityState            ReadOnly  OptionList - Available
EVSE@1            Power                        ReadOnly  decimal    W 0,MaxSet=22000
Connector@1.1     ConnectorType                ReadOnly  string     - cType2
"""

# component, component instance, evse, connector, variable, variable instance
VariableKey = tuple[str, str, int, int, str, str]


@dataclass
class Variable:
    """One variable of a component, with a value per attribute type."""

    component: str
    component_instance: str
    evse_id: int | None
    connector_id: int | None
    variable: str
    variable_instance: str
    mutability: str
    data_type: str
    unit: str | None
    values: dict[str, str | None]

    @classmethod
    def parse(cls, line: str) -> "Variable":
        """Read one line of ``DEVICE_MODEL``."""
        where, name, mutability, data_type, unit, values = line.split()
        component, _, evse = where.partition("@")
        evse_id, _, connector_id = evse.partition(".")
        component, _, component_instance = component.partition(":")
        variable, _, variable_instance = name.partition(":")
        actual, *others = values.split(",")
        attributes = dict(other.split("=") for other in others)
        return cls(
            component=component,
            component_instance=component_instance,
            evse_id=int(evse_id) if evse_id else None,
            connector_id=int(connector_id) if connector_id else None,
            variable=variable,
            variable_instance=variable_instance,
            mutability=mutability,
            data_type=data_type,
            unit=None if unit == "-" else unit,
            values={"Actual": None if actual == "-" else actual, **attributes},
        )

    @property
    def key(self) -> VariableKey:
        return (
            self.component,
            self.component_instance,
            self.evse_id or 0,
            self.connector_id or 0,
            self.variable,
            self.variable_instance,
        )

    def component_ref(self) -> dict[str, Any]:
        ref: dict[str, Any] = {"name": self.component}
        if self.component_instance:
            ref["instance"] = self.component_instance
        if self.evse_id is not None:
            ref["evse"] = {"id": self.evse_id}
            if self.connector_id is not None:
                ref["evse"]["connectorId"] = self.connector_id
        return ref

    def variable_ref(self) -> dict[str, Any]:
        ref: dict[str, Any] = {"name": self.variable}
        if self.variable_instance:
            ref["instance"] = self.variable_instance
        return ref

    def report_data(self) -> dict[str, Any]:
        """Return this variable as a NotifyReport ``reportData`` element."""
        attributes = []
        for kind, value in self.values.items():
            attribute: dict[str, Any] = {
                "type": kind,
                "mutability": self.mutability,
                "persistent": True,
                "constant": False,
            }
            if self.mutability != "WriteOnly" and value is not None:
                attribute["value"] = value
            attributes.append(attribute)
        characteristics: dict[str, Any] = {
            "dataType": self.data_type,
            "supportsMonitoring": False,
        }
        if self.unit:
            characteristics["unit"] = self.unit
        return {
            "component": self.component_ref(),
            "variable": self.variable_ref(),
            "variableAttribute": attributes,
            "variableCharacteristics": characteristics,
        }


def default_device_model() -> list[Variable]:
    """Return the device model a fresh test charger reports."""
    return [Variable.parse(line) for line in DEVICE_MODEL.strip().splitlines()]


def _valid(data_type: str, value: str) -> bool:
    """Whether ``value`` is a valid value of ``data_type``."""
    match data_type:
        case "integer":
            return value.lstrip("-").isdigit()
        case "decimal":
            try:
                Decimal(value)
            except InvalidOperation:
                return False
            return True
        case "boolean":
            return value in ("true", "false")
        case _:
            return True


def _key_of(component: dict[str, Any], variable: dict[str, Any]) -> VariableKey:
    """Return the key of a component and variable as the library hands them in."""
    evse = component.get("evse") or {}
    return (
        component["name"],
        component.get("instance") or "",
        evse.get("id") or 0,
        evse.get("connector_id") or 0,
        variable["name"],
        variable.get("instance") or "",
    )


def _verdict(result: Any) -> str | None:
    """Return the token verdict of a TransactionEvent answer, if it has one."""
    info = result.id_token_info
    return None if info is None else str(info["status"])


# -- The charger ---------------------------------------------------------------


@dataclass
class _Transaction:
    evse_id: int
    id_token: str | None
    seq_no: int = 0

    def next_seq(self) -> int:
        seq_no = self.seq_no
        self.seq_no += 1
        return seq_no


class TestCharger201(OperationsCharger201):
    """A 2.0.1 charging station that follows the remote commands it accepts.

    Args:
        charger_id: its charge point id.
        connection: an open websocket with subprotocol ``ocpp2.0.1``.
        attempts: how often a transaction event is sent before giving up
            (the device model's TransactionMessageAttempts).
        retry_interval_s: the pause before the n-th retry is n times this
            (TransactionMessageRetryInterval).
    """

    __test__ = False
    version = "2.0.1"

    def __init__(
        self,
        charger_id: str,
        connection: Any,
        *,
        attempts: int = 4,
        retry_interval_s: float = 2.0,
    ) -> None:
        super().__init__(charger_id, connection, response_timeout=30)
        self.attempts = attempts
        self.retry_interval_s = retry_interval_s
        self.meter_wh = 10_000
        self.transactions: dict[str, _Transaction] = {}
        self.remote_started: asyncio.Queue[str] = asyncio.Queue()
        self.remote_stopped: asyncio.Queue[str] = asyncio.Queue()
        self.reports_sent: asyncio.Queue[int] = asyncio.Queue()
        self.accept_remote_start = True
        self.report_status = "Accepted"
        self.device_model = {v.key: v for v in default_device_model()}
        # The totalCost of the CSMS's last TransactionEvent answer, per transaction.
        self.total_cost: dict[str, Decimal] = {}
        self._last: tuple[Any, str, Callable[[Any], Any]] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- Calls -----------------------------------------------------------------

    async def send(
        self, payload: Any, interpret: Callable[[Any], Any] = lambda result: result
    ) -> Any:
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

    async def _event(
        self,
        tx: str,
        event_type: str,
        at: datetime,
        trigger: str,
        info: dict[str, Any],
        interpret: Callable[[Any], Any] = _verdict,
        **fields: Any,
    ) -> Any:
        """Send the next TransactionEvent of ``tx``, retried while it fails.

        Each retry is a new message with the same content (same seqNo), as
        OCPP 2.0.1 E13 asks of a charging station.

        Raises:
            OCPPError: the last attempt was answered with a CALLERROR.
        """
        payload = call.TransactionEvent(
            event_type=event_type,
            timestamp=iso(at),
            trigger_reason=trigger,
            seq_no=self.transactions[tx].next_seq(),
            transaction_info={"transactionId": tx, **info},
            **fields,
        )

        def remember(result: Any) -> Any:
            if result.total_cost is not None:
                self.total_cost[tx] = Decimal(str(result.total_cost))
            return interpret(result)

        for attempt in range(1, self.attempts + 1):
            try:
                return await self.send(payload, remember)
            except (OCPPError, TimeoutError):
                if attempt == self.attempts:
                    raise
            await asyncio.sleep(self.retry_interval_s * attempt)
        raise AssertionError("unreachable")

    # -- Charger-initiated, version-neutral -------------------------------------

    async def boot(self) -> Booted:
        result = await self.call(
            call.BootNotification(
                charging_station={"model": "TestModel", "vendorName": "moovolt-tests"},
                reason="PowerUp",
            ),
            suppress=False,
        )
        return Booted(status=result.status, interval=result.interval)

    async def available(self, connector_id: int) -> None:
        """Report connector 1 of EVSE ``connector_id`` Available."""
        await self.call(
            call.StatusNotification(
                timestamp=iso(datetime.now(UTC)),
                connector_status="Available",
                evse_id=connector_id,
                connector_id=1,
            ),
            suppress=False,
        )

    async def authorize(self, id_token: str) -> str:
        result = await self.call(
            call.Authorize(id_token={"idToken": id_token, "type": TOKEN_TYPE}),
            suppress=False,
        )
        status: str = result.id_token_info["status"]
        return status

    async def start_transaction(
        self, connector_id: int, id_token: str, at: datetime
    ) -> tuple[str, str]:
        """Start a transaction on EVSE ``connector_id`` for an authorized token.

        Returns:
            The transaction id and the CSMS's verdict on the token.
        """
        tx = self._open(connector_id, id_token)
        token = {"idToken": id_token, "type": TOKEN_TYPE}
        started: tuple[str, str] = await self._started(
            tx, at, "Authorized", token, interpret=lambda r: (tx, _verdict(r))
        )
        return started

    async def meter(self, transaction_id: str, at: datetime, add_wh: int) -> None:
        """Send a periodic energy register, ``add_wh`` above the last one."""
        self.meter_wh += add_wh
        await self._event(
            transaction_id,
            "Updated",
            at,
            "MeterValuePeriodic",
            {"chargingState": "Charging"},
            meter_value=[self._register(at, "Sample.Periodic")],
        )

    async def stop(
        self, transaction_id: str, at: datetime, reason: str = "Local"
    ) -> str | None:
        """End the transaction.

        Returns:
            The verdict on the token that stopped it, if one was presented
            (a local stop presents the transaction's own token).
        """
        token = self.transactions[transaction_id].id_token
        status: str | None = await self._event(
            transaction_id,
            "Ended",
            at,
            STOP_TRIGGERS.get(reason, "AbnormalCondition"),
            {"chargingState": "Idle", "stoppedReason": reason},
            meter_value=[self._register(at, "Transaction.End")],
            id_token={"idToken": token, "type": TOKEN_TYPE}
            if token and reason == "Local"
            else None,
        )
        return status

    # -- Charger-initiated, 2.0.1 only -------------------------------------------

    async def start_without_token(self, evse_id: int, at: datetime) -> str:
        """Start a transaction when the cable is plugged in, before any token."""
        tx = self._open(evse_id, None)
        await self._started(tx, at, "CablePluggedIn", None)
        return tx

    async def authorize_in_transaction(
        self, transaction_id: str, id_token: str, at: datetime
    ) -> str:
        """Present ``id_token`` in a running transaction; return the verdict."""
        self.transactions[transaction_id].id_token = id_token
        status = await self._event(
            transaction_id,
            "Updated",
            at,
            "Authorized",
            {"chargingState": "Charging"},
            id_token={"idToken": id_token, "type": TOKEN_TYPE},
        )
        assert status is not None
        return str(status)

    def _open(self, evse_id: int, id_token: str | None) -> str:
        tx = str(uuid.uuid4())
        self.transactions[tx] = _Transaction(evse_id=evse_id, id_token=id_token)
        return tx

    async def _started(
        self,
        tx: str,
        at: datetime,
        trigger: str,
        id_token: dict[str, str] | None,
        remote_start_id: int | None = None,
        interpret: Callable[[Any], Any] = _verdict,
    ) -> Any:
        """Send the Started event; return its answer as ``interpret`` reads it."""
        evse_id = self.transactions[tx].evse_id
        info: dict[str, Any] = {"chargingState": "Charging"}
        if remote_start_id is not None:
            info["remoteStartId"] = remote_start_id
        return await self._event(
            tx,
            "Started",
            at,
            trigger,
            info,
            interpret,
            meter_value=[self._register(at, "Transaction.Begin")],
            evse={"id": evse_id, "connectorId": 1},
            id_token=id_token,
            reservation_id=self.take_reservation(
                evse_id, id_token["idToken"] if id_token else None
            ),
        )

    def _register(self, at: datetime, context: str) -> dict[str, Any]:
        sample = {
            "value": self.meter_wh,
            "context": context,
            "measurand": ENERGY,
            "unitOfMeasure": {"unit": "Wh"},
        }
        return {"timestamp": iso(at), "sampledValue": [sample]}

    # -- CSMS-initiated: transactions --------------------------------------------

    @on(Action.request_start_transaction)  # type: ignore[untyped-decorator]
    async def on_request_start(
        self,
        id_token: dict[str, Any],
        remote_start_id: int,
        evse_id: int | None = None,
        **_: Any,
    ) -> Any:
        if not self.accept_remote_start:
            return call_result.RequestStartTransaction(status="Rejected")
        token = {"idToken": id_token["id_token"], "type": id_token["type"]}
        self._spawn(self._start_after_remote(evse_id or 1, token, remote_start_id))
        return call_result.RequestStartTransaction(status="Accepted")

    async def _start_after_remote(
        self, evse_id: int, token: dict[str, str], remote_start_id: int
    ) -> None:
        await asyncio.sleep(0.1)  # a charger answers before it acts
        if self._setting("AuthCtrlr", "AuthorizeRemoteStart") == "true":
            await self.authorize(token["idToken"])
        tx = self._open(evse_id, token["idToken"])
        await self._started(
            tx, datetime.now(UTC), "RemoteStart", token, remote_start_id
        )
        await self.remote_started.put(tx)

    @on(Action.request_stop_transaction)  # type: ignore[untyped-decorator]
    async def on_request_stop(self, transaction_id: str, **_: Any) -> Any:
        if transaction_id not in self.transactions:
            return call_result.RequestStopTransaction(status="Rejected")
        self._spawn(self._stop_after_remote(transaction_id))
        return call_result.RequestStopTransaction(status="Accepted")

    async def _stop_after_remote(self, transaction_id: str) -> None:
        await asyncio.sleep(0.1)
        await self.stop(transaction_id, datetime.now(UTC), reason="Remote")
        await self.remote_stopped.put(transaction_id)

    # -- CSMS-initiated: device model --------------------------------------------

    @on(Action.get_variables)  # type: ignore[untyped-decorator]
    async def on_get_variables(
        self, get_variable_data: list[dict[str, Any]], **_: Any
    ) -> Any:
        return call_result.GetVariables(
            get_variable_result=[self._get(item) for item in get_variable_data]
        )

    def _get(self, item: dict[str, Any]) -> dict[str, Any]:
        kind = item.get("attribute_type") or "Actual"
        result = {
            "component": item["component"],
            "variable": item["variable"],
            "attribute_type": kind,
        }
        found = self._find(item)
        if isinstance(found, str):
            return {"attribute_status": found, **result}
        if found.mutability == "WriteOnly":
            return {"attribute_status": "Rejected", **result}
        value = found.values[kind]
        if value is not None:
            result["attribute_value"] = value
        return {"attribute_status": "Accepted", **result}

    @on(Action.set_variables)  # type: ignore[untyped-decorator]
    async def on_set_variables(
        self, set_variable_data: list[dict[str, Any]], **_: Any
    ) -> Any:
        return call_result.SetVariables(
            set_variable_result=[self._set(item) for item in set_variable_data]
        )

    def _set(self, item: dict[str, Any]) -> dict[str, Any]:
        kind = item.get("attribute_type") or "Actual"
        found = self._find(item)
        if isinstance(found, str):
            status = found
        elif found.mutability == "ReadOnly" or not _valid(
            found.data_type, item["attribute_value"]
        ):
            status = "Rejected"
        else:
            status = "Accepted"
            found.values[kind] = item["attribute_value"]
        return {
            "attribute_status": status,
            "attribute_type": kind,
            "component": item["component"],
            "variable": item["variable"],
        }

    def _find(self, item: dict[str, Any]) -> Variable | str:
        """Return the variable of a request for one attribute, or why not."""
        key = _key_of(item["component"], item["variable"])
        if not any(v.key[:4] == key[:4] for v in self.device_model.values()):
            return "UnknownComponent"
        found = self.device_model.get(key)
        if found is None:
            return "UnknownVariable"
        if (item.get("attribute_type") or "Actual") not in found.values:
            return "NotSupportedAttributeType"
        return found

    def _setting(self, component: str, variable: str) -> str | None:
        found = self.device_model.get((component, "", 0, 0, variable, ""))
        return None if found is None else found.values.get("Actual")

    @on(Action.get_base_report)  # type: ignore[untyped-decorator]
    async def on_get_base_report(
        self, request_id: int, report_base: str, **_: Any
    ) -> Any:
        if self.report_status == "Accepted":
            self._spawn(self._report(request_id, self.report(report_base)))
        return call_result.GetBaseReport(status=self.report_status)

    def report(self, report_base: str) -> list[Variable]:
        """Return the variables a GetBaseReport of ``report_base`` reports."""
        variables = [
            replace(v, values=dict(v.values)) for v in self.device_model.values()
        ]
        if report_base == "ConfigurationInventory":
            return [v for v in variables if v.mutability != "ReadOnly"]
        if report_base == "SummaryInventory":
            return [v for v in variables if v.variable == "AvailabilityState"]
        return variables

    async def _report(self, request_id: int, variables: list[Variable]) -> None:
        """Send the report in two parts, the first one with ``tbc`` set."""
        await asyncio.sleep(0.1)
        half = (len(variables) + 1) // 2
        parts = [variables[:half], variables[half:]]
        for seq_no, part in enumerate(parts):
            await self.call(
                call.NotifyReport(
                    request_id=request_id,
                    generated_at=iso(datetime.now(UTC)),
                    seq_no=seq_no,
                    tbc=seq_no < len(parts) - 1,
                    report_data=[v.report_data() for v in part] or None,
                ),
                suppress=False,
            )
        await self.reports_sent.put(request_id)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
