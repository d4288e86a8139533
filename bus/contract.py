"""The bus contract between the gateways (SPR) and the management system (SG).

Both halves import this module and nothing else of each other. Charger messages
travel as version-neutral domain events wherever the meaning is the same in
OCPP 1.6 and 2.0.1; what has no neutral form yet travels as ``OcppMessage``.

Version 1 of the contract. A change that an older peer could not read bumps
``CONTRACT_VERSION``; consumers refuse envelopes of a newer version.
"""

from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

CONTRACT_VERSION = 1


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class OcppVersion(StrEnum):
    V16 = "1.6"
    V201 = "2.0.1"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


# -- Names on the broker -----------------------------------------------------


class Topology:
    """Exchange and queue names, all under one deployment prefix.

    * ``decisions``: charger requests that need an answer (RPC).
    * ``events``: fire-and-forget charger events (status, meter values, ...).
    * ``results``: chargers' answers to commands, for the SG.
    * ``dead_letters``: events the SG could not store, kept for a person.
    * ``commands`` exchange: SG commands routed by ``charger.<id>``; a gateway
      binds that key to its own queue while it holds the charger's socket.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.decisions = f"{prefix}.sg.decisions"
        self.events = f"{prefix}.sg.events"
        self.results = f"{prefix}.sg.command-results"
        self.dead_letters = f"{prefix}.sg.dead-letters"
        self.commands_exchange = f"{prefix}.commands"

    def gateway_commands(self, gateway_id: str) -> str:
        return f"{self.prefix}.gateway.{gateway_id}.commands"

    def gateway_replies(self, gateway_id: str) -> str:
        return f"{self.prefix}.gateway.{gateway_id}.replies"

    @staticmethod
    def charger_key(charger_id: str) -> str:
        return f"charger.{charger_id}"


# -- Shared value types --------------------------------------------------------


class AuthorizationStatus(StrEnum):
    ACCEPTED = "Accepted"
    BLOCKED = "Blocked"
    EXPIRED = "Expired"
    INVALID = "Invalid"
    CONCURRENT_TX = "ConcurrentTx"


class RegistrationStatus(StrEnum):
    ACCEPTED = "Accepted"
    PENDING = "Pending"
    REJECTED = "Rejected"


class IdTokenInfo(_Model):
    """The CSMS's verdict on an id token."""

    status: AuthorizationStatus
    expiry_date: datetime | None = None
    parent_id_token: str | None = None


class MeterSample(_Model):
    """One sampled value of a MeterValues / TransactionEvent message."""

    timestamp: datetime
    value: Decimal
    measurand: str = "Energy.Active.Import.Register"
    unit: str = "Wh"
    phase: str = ""
    location: str = ""
    context: str = ""

    def energy_wh(self) -> Decimal | None:
        """Return the value in Wh if this is an imported-energy register."""
        if self.measurand != "Energy.Active.Import.Register" or self.phase:
            return None
        if self.unit == "kWh":
            return self.value * 1000
        return self.value if self.unit == "Wh" else None


# -- Charger -> SG: events -----------------------------------------------------


class ChargerConnecting(_Model):
    """A WebSocket handshake asks to be let in (RPC: ``ConnectDecision``)."""

    kind: Literal["connecting"] = "connecting"
    remote_address: str = ""
    password: str | None = Field(default=None, repr=False)


class ChargerDisconnected(_Model):
    kind: Literal["disconnected"] = "disconnected"
    close_code: int | None = None


class BootRequest(_Model):
    """BootNotification (RPC: ``BootDecision``)."""

    kind: Literal["boot"] = "boot"
    vendor: str
    model: str
    serial_number: str | None = None
    firmware_version: str | None = None
    iccid: str | None = None
    imsi: str | None = None
    meter_type: str | None = None
    meter_serial_number: str | None = None


class AuthorizeRequest(_Model):
    """Authorize (RPC: ``AuthorizeDecision``)."""

    kind: Literal["authorize"] = "authorize"
    id_token: str


class TransactionStarted(_Model):
    """The charger started a transaction (RPC: ``StartDecision``)."""

    kind: Literal["transaction_started"] = "transaction_started"
    connector_id: int
    id_token: str
    meter_start_wh: Decimal
    timestamp: datetime
    reservation_id: int | None = None


class TransactionEnded(_Model):
    """The charger stopped a transaction (RPC: ``StopDecision``)."""

    kind: Literal["transaction_ended"] = "transaction_ended"
    transaction_id: str
    meter_stop_wh: Decimal
    timestamp: datetime
    id_token: str | None = None
    reason: str | None = None
    samples: tuple[MeterSample, ...] = ()


class MeterReadings(_Model):
    """MeterValues (fire-and-forget)."""

    kind: Literal["meter_values"] = "meter_values"
    connector_id: int
    transaction_id: str | None = None
    samples: tuple[MeterSample, ...]


class StatusChanged(_Model):
    """StatusNotification (fire-and-forget)."""

    kind: Literal["status"] = "status"
    connector_id: int
    status: str
    error_code: str = "NoError"
    info: str | None = None
    vendor_id: str | None = None
    vendor_error_code: str | None = None
    timestamp: datetime | None = None


class HeartbeatSeen(_Model):
    """A Heartbeat the gateway answered itself (fire-and-forget)."""

    kind: Literal["heartbeat"] = "heartbeat"


class OcppMessage(_Model):
    """A charger message with no version-neutral form yet.

    RPC (answered with ``OcppReply``) when the gateway publishes it with a
    ``reply_to``, otherwise fire-and-forget.
    """

    kind: Literal["ocpp"] = "ocpp"
    action: str
    payload: dict[str, Any]


Event = Annotated[
    ChargerConnecting
    | ChargerDisconnected
    | BootRequest
    | AuthorizeRequest
    | TransactionStarted
    | TransactionEnded
    | MeterReadings
    | StatusChanged
    | HeartbeatSeen
    | OcppMessage,
    Field(discriminator="kind"),
]


class EventEnvelope(_Model):
    """Everything a gateway publishes about a charger."""

    contract: int = CONTRACT_VERSION
    message_id: str
    charger_id: str
    ocpp_version: OcppVersion
    gateway_id: str
    received_at: datetime = Field(default_factory=utcnow)
    event: Event


# -- SG -> gateway: decisions --------------------------------------------------


class ConnectDecision(_Model):
    kind: Literal["connect"] = "connect"
    accepted: bool
    reason: str = ""


class BootDecision(_Model):
    kind: Literal["boot"] = "boot"
    status: RegistrationStatus
    interval_s: int
    current_time: datetime = Field(default_factory=utcnow)


class AuthorizeDecision(_Model):
    kind: Literal["authorize"] = "authorize"
    id_token_info: IdTokenInfo


class StartDecision(_Model):
    kind: Literal["start"] = "start"
    transaction_id: str
    id_token_info: IdTokenInfo


class StopDecision(_Model):
    kind: Literal["stop"] = "stop"
    id_token_info: IdTokenInfo | None = None


class OcppReply(_Model):
    kind: Literal["ocpp"] = "ocpp"
    payload: dict[str, Any]


class DecisionError(_Model):
    """The SG could not decide; the gateway answers with a CALLERROR."""

    kind: Literal["error"] = "error"
    code: Literal["InternalError", "NotImplemented", "NotSupported"] = "InternalError"
    description: str = ""


Decision = Annotated[
    ConnectDecision
    | BootDecision
    | AuthorizeDecision
    | StartDecision
    | StopDecision
    | OcppReply
    | DecisionError,
    Field(discriminator="kind"),
]


class DecisionEnvelope(_Model):
    contract: int = CONTRACT_VERSION
    decision: Decision


# -- SG -> charger: commands ---------------------------------------------------


class RemoteStart(_Model):
    kind: Literal["remote_start"] = "remote_start"
    connector_id: int | None
    id_token: str
    remote_start_id: int | None = None


class RemoteStop(_Model):
    kind: Literal["remote_stop"] = "remote_stop"
    transaction_id: str


class OcppCall(_Model):
    """A version-specific call, sent to the charger as it is."""

    kind: Literal["ocpp_call"] = "ocpp_call"
    action: str
    payload: dict[str, Any]


Command = Annotated[RemoteStart | RemoteStop | OcppCall, Field(discriminator="kind")]


class CommandEnvelope(_Model):
    """A command for one charger.

    ``task_token`` (base64) is the Temporal activity waiting for the answer;
    the gateway hands it back untouched in the ``CommandResult``.
    """

    contract: int = CONTRACT_VERSION
    command_id: str
    charger_id: str
    task_token: str | None = None
    issued_at: datetime = Field(default_factory=utcnow)
    command: Command


class CommandOutcome(StrEnum):
    ANSWERED = "answered"  # CALLRESULT; see ``status`` and ``payload``
    CALL_ERROR = "call_error"  # the charger answered with a CALLERROR
    TIMEOUT = "timeout"  # the charger did not answer in time
    DISCONNECTED = "disconnected"  # the socket closed before the answer
    NOT_SUPPORTED = "not_supported"  # no such call in the charger's version


class CommandResult(_Model):
    contract: int = CONTRACT_VERSION
    command_id: str
    charger_id: str
    task_token: str | None = None
    outcome: CommandOutcome
    status: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    completed_at: datetime = Field(default_factory=utcnow)

    @property
    def accepted(self) -> bool:
        return self.outcome is CommandOutcome.ANSWERED and self.status == "Accepted"


# Fire-and-forget kinds: everything else a charger sends needs a decision.
FIRE_AND_FORGET = frozenset(
    {"disconnected", "meter_values", "status", "heartbeat"},
)
