"""What a simulated charger says, in OCPP 1.6 and in OCPP 2.0.1.

One ``Flavour`` per version builds the payloads of the calls a charger makes
and reads the answers it needs (boot status, token verdict, transaction id).
Both versions share the shape of a session: authorize, start, meter values,
stop; what differs (who names the transaction, sequence numbers, statuses)
stays in here. Every sampled value carries its own timestamp, so that the
CSMS stores each one once.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

Payload = dict[str, Any]
Call = tuple[str, Payload]

ENERGY = "Energy.Active.Import.Register"
VENDOR = "moovolt-sim"
MODEL = "SimCharger"


def iso(moment: datetime) -> str:
    """Return ``moment`` as an OCPP date-time in UTC, to the millisecond."""
    return (
        moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def now() -> str:
    """Return the current time as an OCPP date-time."""
    return iso(datetime.now(UTC))


@dataclass
class Transaction:
    """A session as the charger tracks it.

    Attributes:
        connector_id: the 1.6 connector, or the 2.0.1 EVSE.
        id_token: the token that started it.
        meter_wh: the energy register, in Wh.
        transaction_id: the CSMS's id (1.6) or the charger's own (2.0.1);
            None until a 1.6 start is answered.
        seq_no: the next 2.0.1 TransactionEvent's seqNo.
    """

    connector_id: int
    id_token: str
    meter_wh: int
    transaction_id: str | None = None
    seq_no: int = 0

    def next_seq(self) -> int:
        seq_no = self.seq_no
        self.seq_no += 1
        return seq_no


class Flavour(Protocol):
    """The calls of one OCPP version."""

    version: str
    subprotocol: str

    def boot(self, serial: str) -> Call: ...

    def heartbeat(self) -> Call: ...

    def status(self, connector_id: int, status: str) -> Call: ...

    def authorize(self, id_token: str) -> Call: ...

    def open(self, tx: Transaction) -> None: ...

    def start(self, tx: Transaction) -> Call: ...

    def meter(self, tx: Transaction) -> Call: ...

    def stop(self, tx: Transaction) -> Call: ...

    def boot_status(self, answer: Payload) -> str: ...

    def token_status(self, answer: Payload) -> str | None: ...

    def started(self, tx: Transaction, answer: Payload) -> None: ...

    # Connector statuses around a session: before start, after start,
    # after stop, back to idle.
    session_statuses: tuple[str, str, str, str]


def samples_in(call: Call) -> int:
    """Return how many sampled values ``call`` carries."""
    values = call[1].get("meterValue", ())
    return sum(len(value["sampledValue"]) for value in values)


class V16:
    """OCPP 1.6: the CSMS names transactions (integers)."""

    version = "1.6"
    subprotocol = "ocpp1.6"
    session_statuses = ("Preparing", "Charging", "Finishing", "Available")

    def boot(self, serial: str) -> Call:
        return "BootNotification", {
            "chargePointVendor": VENDOR,
            "chargePointModel": MODEL,
            "chargePointSerialNumber": serial[:25],
            "firmwareVersion": "1.0",
        }

    def heartbeat(self) -> Call:
        return "Heartbeat", {}

    def status(self, connector_id: int, status: str) -> Call:
        return "StatusNotification", {
            "connectorId": connector_id,
            "errorCode": "NoError",
            "status": status,
            "timestamp": now(),
        }

    def authorize(self, id_token: str) -> Call:
        return "Authorize", {"idTag": id_token}

    def open(self, tx: Transaction) -> None:
        tx.transaction_id = None

    def start(self, tx: Transaction) -> Call:
        return "StartTransaction", {
            "connectorId": tx.connector_id,
            "idTag": tx.id_token,
            "meterStart": tx.meter_wh,
            "timestamp": now(),
        }

    def meter(self, tx: Transaction) -> Call:
        assert tx.transaction_id is not None
        return "MeterValues", {
            "connectorId": tx.connector_id,
            "transactionId": int(tx.transaction_id),
            "meterValue": [
                {
                    "timestamp": now(),
                    "sampledValue": [
                        {
                            "value": str(tx.meter_wh),
                            "measurand": ENERGY,
                            "unit": "Wh",
                            "context": "Sample.Periodic",
                        }
                    ],
                }
            ],
        }

    def stop(self, tx: Transaction) -> Call:
        assert tx.transaction_id is not None
        return "StopTransaction", {
            "transactionId": int(tx.transaction_id),
            "idTag": tx.id_token,
            "meterStop": tx.meter_wh,
            "timestamp": now(),
            "reason": "Local",
        }

    def boot_status(self, answer: Payload) -> str:
        return str(answer.get("status"))

    def token_status(self, answer: Payload) -> str | None:
        info = answer.get("idTagInfo")
        return None if info is None else str(info.get("status"))

    def started(self, tx: Transaction, answer: Payload) -> None:
        tx.transaction_id = str(answer["transactionId"])


class V201:
    """OCPP 2.0.1: the charger names transactions, events carry a seqNo."""

    version = "2.0.1"
    subprotocol = "ocpp2.0.1"
    session_statuses = ("Occupied", "Occupied", "Occupied", "Available")
    token_type = "ISO14443"

    def boot(self, serial: str) -> Call:
        return "BootNotification", {
            "chargingStation": {
                "vendorName": VENDOR,
                "model": MODEL,
                "serialNumber": serial[:25],
                "firmwareVersion": "1.0",
            },
            "reason": "PowerUp",
        }

    def heartbeat(self) -> Call:
        return "Heartbeat", {}

    def status(self, connector_id: int, status: str) -> Call:
        return "StatusNotification", {
            "timestamp": now(),
            "connectorStatus": status,
            "evseId": connector_id,
            "connectorId": 1,
        }

    def authorize(self, id_token: str) -> Call:
        return "Authorize", {"idToken": self._token(id_token)}

    def open(self, tx: Transaction) -> None:
        tx.transaction_id = str(uuid.uuid4())
        tx.seq_no = 0

    def start(self, tx: Transaction) -> Call:
        return self._event(
            tx,
            "Started",
            "Authorized",
            {"chargingState": "Charging"},
            "Transaction.Begin",
            evse={"id": tx.connector_id, "connectorId": 1},
            idToken=self._token(tx.id_token),
        )

    def meter(self, tx: Transaction) -> Call:
        return self._event(
            tx,
            "Updated",
            "MeterValuePeriodic",
            {"chargingState": "Charging"},
            "Sample.Periodic",
        )

    def stop(self, tx: Transaction) -> Call:
        return self._event(
            tx,
            "Ended",
            "StopAuthorized",
            {"chargingState": "Idle", "stoppedReason": "Local"},
            "Transaction.End",
            idToken=self._token(tx.id_token),
        )

    def boot_status(self, answer: Payload) -> str:
        return str(answer.get("status"))

    def token_status(self, answer: Payload) -> str | None:
        info = answer.get("idTokenInfo")
        return None if info is None else str(info.get("status"))

    def started(self, tx: Transaction, answer: Payload) -> None:
        """Nothing to learn: the charger named the transaction itself."""

    def _token(self, id_token: str) -> Payload:
        return {"idToken": id_token, "type": self.token_type}

    def _event(
        self,
        tx: Transaction,
        event_type: str,
        trigger: str,
        info: Payload,
        context: str,
        **fields: Any,
    ) -> Call:
        at = now()
        register = {
            "timestamp": at,
            "sampledValue": [
                {
                    "value": tx.meter_wh,
                    "context": context,
                    "measurand": ENERGY,
                    "unitOfMeasure": {"unit": "Wh"},
                }
            ],
        }
        return "TransactionEvent", {
            "eventType": event_type,
            "timestamp": at,
            "triggerReason": trigger,
            "seqNo": tx.next_seq(),
            "transactionInfo": {"transactionId": tx.transaction_id, **info},
            "meterValue": [register],
            **fields,
        }


FLAVOURS: dict[str, Flavour] = {"1.6": V16(), "2.0.1": V201()}
