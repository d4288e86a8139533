"""How a fault-suite charger says things in OCPP 1.6 and in OCPP 2.0.1.

A dialect turns the charger's doings (authorize, start, a meter sample,
stop) into ``Outgoing`` calls of its version and books the CSMS's answers in
the charger's ledger. Its station class is the ``ocpp`` library's charge
point of that version, answering the CSMS's remote stop. No I/O here.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from ocpp import v16, v201
from ocpp.routing import on
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

from tests.faults.ledger import Sample, Transaction

ENERGY = "Energy.Active.Import.Register"
TOKEN_TYPE = "ISO14443"
# 2.0.1 triggerReason of an Ended event, by its stoppedReason.
STOP_TRIGGERS = {"Local": "StopAuthorized", "Remote": "RemoteStop"}


def iso(moment: datetime) -> str:
    """Return ``moment`` as an OCPP date-time in UTC, microseconds kept."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _ignore(result: Any) -> None:
    return None


def new_id() -> str:
    """Return a fresh OCPP message id."""
    return str(uuid.uuid4())


@dataclass(eq=False)
class Outgoing:
    """One call in a charger's outbox.

    The payload is built at the first send (a 1.6 MeterValues needs the
    transaction id that the StartTransaction before it brings back) and never
    changes after. ``unique_id`` stays for a resend after a timeout or a lost
    socket, and is renewed after a CALLERROR. A call that is not
    ``transactional`` is given up after one failed attempt, and
    ``given_up`` is told.
    """

    build: Callable[[], Any]
    answered: Callable[[Any], None] = _ignore
    transactional: bool = True
    unique_id: str = field(default_factory=new_id)
    payload: Any = None
    given_up: Callable[[], None] | None = None

    def materialize(self) -> Any:
        """Return the payload, building it once."""
        if self.payload is None:
            self.payload = self.build()
        return self.payload


class Owner(Protocol):
    """The charger behind a station: it decides on a remote stop."""

    def remote_stop(self, transaction_id: str) -> bool:
        """Stop ``transaction_id`` if it runs; return whether it does."""
        ...


class Station16(v16.ChargePoint):  # type: ignore[misc]
    """The ``ocpp`` library's 1.6 charge point, answering remote stops."""

    def __init__(self, charger_id: str, connection: Any, owner: Owner, timeout: float):
        super().__init__(charger_id, connection, response_timeout=timeout)
        self.owner = owner

    @on(Action16.remote_stop_transaction)  # type: ignore[untyped-decorator]
    async def on_remote_stop(self, transaction_id: int, **_: Any) -> Any:
        accepted = self.owner.remote_stop(str(transaction_id))
        return result16.RemoteStopTransaction(
            status="Accepted" if accepted else "Rejected"
        )


class Station201(v201.ChargePoint):  # type: ignore[misc]
    """The ``ocpp`` library's 2.0.1 charging station, answering remote stops."""

    def __init__(self, charger_id: str, connection: Any, owner: Owner, timeout: float):
        super().__init__(charger_id, connection, response_timeout=timeout)
        self.owner = owner

    @on(Action201.request_stop_transaction)  # type: ignore[untyped-decorator]
    async def on_request_stop(self, transaction_id: str, **_: Any) -> Any:
        accepted = self.owner.remote_stop(transaction_id)
        return result201.RequestStopTransaction(
            status="Accepted" if accepted else "Rejected"
        )


class Dialect16:
    """OCPP 1.6: the CSMS names transactions; only MeterValues are samples."""

    version = "1.6"
    subprotocol = "ocpp1.6"
    station = Station16
    registers_are_samples = False

    def boot(self) -> Outgoing:
        return Outgoing(
            lambda: call16.BootNotification(
                charge_point_model="FaultModel", charge_point_vendor="moovolt-faults"
            ),
            transactional=False,
        )

    def authorize(self, id_token: str, verdict: Callable[[str], None]) -> Outgoing:
        return Outgoing(
            lambda: call16.Authorize(id_tag=id_token),
            lambda result: verdict(result.id_tag_info["status"]),
            transactional=False,
        )

    def start(self, tx: Transaction, offline: bool) -> Outgoing:
        def answered(result: Any) -> None:
            tx.transaction_id = str(result.transaction_id)
            tx.verdict = result.id_tag_info["status"]

        return Outgoing(
            lambda: call16.StartTransaction(
                connector_id=tx.connector_id,
                id_tag=tx.id_token,
                meter_start=tx.meter_start_wh,
                timestamp=iso(tx.started_at),
            ),
            answered,
        )

    def meter(self, tx: Transaction, sample: Sample, offline: bool) -> Outgoing:
        def build() -> Any:
            assert tx.transaction_id is not None, "queued behind its start"
            return call16.MeterValues(
                connector_id=tx.connector_id,
                transaction_id=int(tx.transaction_id),
                meter_value=[
                    {
                        "timestamp": iso(sample.at),
                        "sampledValue": [
                            {
                                "value": str(sample.wh),
                                "context": sample.context,
                                "measurand": ENERGY,
                                "unit": "Wh",
                            }
                        ],
                    }
                ],
            )

        return Outgoing(build)

    def stop(self, tx: Transaction, offline: bool) -> Outgoing:
        def build() -> Any:
            assert tx.transaction_id is not None and tx.meter_stop_wh is not None
            assert tx.stopped_at is not None
            return call16.StopTransaction(
                meter_stop=tx.meter_stop_wh,
                timestamp=iso(tx.stopped_at),
                transaction_id=int(tx.transaction_id),
                reason=tx.stop_reason,
            )

        def answered(result: Any) -> None:
            tx.ended_answered = True

        return Outgoing(build, answered)


class Dialect201:
    """OCPP 2.0.1: the charger names transactions; every register is a sample.

    Events made while the socket is down carry ``offline: true``; each
    transaction's events are numbered from 0 (``seqNo``) as they are made.
    """

    version = "2.0.1"
    subprotocol = "ocpp2.0.1"
    station = Station201
    registers_are_samples = True

    def __init__(self) -> None:
        self._seq: dict[int, int] = {}

    def boot(self) -> Outgoing:
        return Outgoing(
            lambda: call201.BootNotification(
                charging_station={
                    "model": "FaultModel",
                    "vendorName": "moovolt-faults",
                },
                reason="PowerUp",
            ),
            transactional=False,
        )

    def authorize(self, id_token: str, verdict: Callable[[str], None]) -> Outgoing:
        return Outgoing(
            lambda: call201.Authorize(
                id_token={"idToken": id_token, "type": TOKEN_TYPE}
            ),
            lambda result: verdict(result.id_token_info["status"]),
            transactional=False,
        )

    def start(self, tx: Transaction, offline: bool) -> Outgoing:
        assert tx.transaction_id is not None
        payload = self._event(
            tx,
            "Started",
            tx.started_at,
            "Authorized",
            offline,
            tx.samples[-1],
            evse={"id": tx.connector_id, "connectorId": 1},
            id_token={"idToken": tx.id_token, "type": TOKEN_TYPE},
        )

        def answered(result: Any) -> None:
            info = result.id_token_info
            tx.verdict = None if info is None else str(info["status"])

        return Outgoing(lambda: payload, answered)

    def meter(self, tx: Transaction, sample: Sample, offline: bool) -> Outgoing:
        payload = self._event(
            tx, "Updated", sample.at, "MeterValuePeriodic", offline, sample
        )
        return Outgoing(lambda: payload)

    def stop(self, tx: Transaction, offline: bool) -> Outgoing:
        assert tx.stopped_at is not None and tx.stop_reason is not None
        local = tx.stop_reason == "Local"
        payload = self._event(
            tx,
            "Ended",
            tx.stopped_at,
            STOP_TRIGGERS[tx.stop_reason],
            offline,
            tx.samples[-1],
            stopped_reason=tx.stop_reason,
            id_token={"idToken": tx.id_token, "type": TOKEN_TYPE} if local else None,
        )

        def answered(result: Any) -> None:
            tx.ended_answered = True

        return Outgoing(lambda: payload, answered)

    def _event(
        self,
        tx: Transaction,
        event_type: str,
        at: datetime,
        trigger: str,
        offline: bool,
        sample: Sample,
        *,
        stopped_reason: str | None = None,
        **fields: Any,
    ) -> Any:
        seq_no = self._seq.get(tx.number, 0)
        self._seq[tx.number] = seq_no + 1
        info: dict[str, Any] = {
            "transactionId": tx.transaction_id,
            "chargingState": "Idle" if event_type == "Ended" else "Charging",
        }
        if stopped_reason is not None:
            info["stoppedReason"] = stopped_reason
        register = {
            "value": sample.wh,
            "context": sample.context,
            "measurand": ENERGY,
            "unitOfMeasure": {"unit": "Wh"},
        }
        return call201.TransactionEvent(
            event_type=event_type,
            timestamp=iso(at),
            trigger_reason=trigger,
            seq_no=seq_no,
            transaction_info=info,
            meter_value=[{"timestamp": iso(sample.at), "sampledValue": [register]}],
            offline=True if offline else None,
            **fields,
        )


Dialect = Dialect16 | Dialect201

DIALECTS: dict[str, Callable[[], Dialect]] = {"1.6": Dialect16, "2.0.1": Dialect201}
