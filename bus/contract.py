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
    * ``domain_events`` exchange (topic): what happened, for other systems
      (``bus.domain``), routed by event type; ``webhooks`` is the SG's own
      queue on it, from which webhook deliveries start.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.decisions = f"{prefix}.sg.decisions"
        self.events = f"{prefix}.sg.events"
        self.results = f"{prefix}.sg.command-results"
        self.dead_letters = f"{prefix}.sg.dead-letters"
        self.commands_exchange = f"{prefix}.commands"
        self.domain_events = f"{prefix}.domain-events"
        self.webhooks = f"{prefix}.sg.webhooks"

    @property
    def durable_queues(self) -> tuple[str, ...]:
        """Every queue that outlives its consumers, dead letters first."""
        return (
            self.dead_letters,
            self.decisions,
            self.events,
            self.results,
            self.webhooks,
        )

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
    """The CSMS's verdict on an id token.

    ``cache_expiry_date`` tells a 2.0.1 charger how long it may keep the
    verdict in its authorization cache (1.6 uses ``expiry_date`` for both).
    """

    status: AuthorizationStatus
    expiry_date: datetime | None = None
    parent_id_token: str | None = None
    cache_expiry_date: datetime | None = None


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
    """A WebSocket handshake asks to be let in (RPC: ``ConnectDecision``).

    ``security_profile`` is what the connection itself proves, as OCPP
    numbers it: 1 plain WebSocket, 2 TLS, 3 TLS with a client certificate
    the gateway verified against its CA and matched to the charge point id.
    The SG refuses a charger whose required profile is higher.
    """

    kind: Literal["connecting"] = "connecting"
    remote_address: str = ""
    password: str | None = Field(default=None, repr=False)
    security_profile: int = 1


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
    id_token_type: str | None = Field(
        default=None,
        description="2.0.1 IdTokenEnumType (ISO14443, Central, NoAuthorization, "
        "...); None for 1.6, whose idTag has no type.",
    )


class _TransactionFacts(_Model):
    """What 2.0.1's TransactionEvent adds to every transaction event.

    1.6 leaves these at their defaults. ``seq_no`` orders a charger's events
    of one transaction; ``offline`` marks events queued while disconnected.
    """

    seq_no: int | None = None
    offline: bool = False
    trigger_reason: str | None = None
    id_token_type: str | None = None
    samples: tuple[MeterSample, ...] = ()


class TransactionStarted(_TransactionFacts):
    """The charger started a transaction (RPC: ``StartDecision``).

    ``connector_id`` is the 1.6 connector, which is the 2.0.1 EVSE id;
    ``evse_connector_id`` is 2.0.1's connector within that EVSE.
    ``transaction_id`` is None in 1.6 (the CSMS hands one out) and the
    charger's own id in 2.0.1. A 2.0.1 transaction may start before any id
    token is presented, and its meter start is the Transaction.Begin register
    when the charger sends one.
    """

    kind: Literal["transaction_started"] = "transaction_started"
    connector_id: int
    id_token: str | None
    meter_start_wh: Decimal | None
    timestamp: datetime
    reservation_id: int | None = None
    transaction_id: str | None = None
    remote_start_id: int | None = None
    evse_connector_id: int | None = None


class TransactionUpdated(_TransactionFacts):
    """2.0.1 TransactionEvent Updated (RPC: ``TransactionDecision``).

    Carries meter values, a change of charging state, or an id token
    presented after the transaction started (triggerReason Authorized).
    """

    kind: Literal["transaction_updated"] = "transaction_updated"
    transaction_id: str
    timestamp: datetime
    connector_id: int | None = None
    evse_connector_id: int | None = None
    id_token: str | None = None
    charging_state: str | None = None
    remote_start_id: int | None = None


class TransactionEnded(_TransactionFacts):
    """The charger stopped a transaction (RPC: ``StopDecision``).

    ``meter_stop_wh`` is None when a 2.0.1 charger sends no
    Transaction.End register; the SG then uses the last one stored.
    """

    kind: Literal["transaction_ended"] = "transaction_ended"
    transaction_id: str
    meter_stop_wh: Decimal | None
    timestamp: datetime
    id_token: str | None = None
    reason: str | None = None
    connector_id: int | None = None
    evse_connector_id: int | None = None


class MeterReadings(_Model):
    """MeterValues (fire-and-forget)."""

    kind: Literal["meter_values"] = "meter_values"
    connector_id: int
    transaction_id: str | None = None
    samples: tuple[MeterSample, ...]


class StatusChanged(_Model):
    """StatusNotification (fire-and-forget).

    ``connector_id`` is the 1.6 connector (0 = the charger) or the 2.0.1 EVSE;
    ``evse_connector_id`` is the 2.0.1 connector within the EVSE. 2.0.1
    connector statuses (Available, Occupied, Reserved, Unavailable, Faulted)
    travel as they are.
    """

    kind: Literal["status"] = "status"
    connector_id: int
    evse_connector_id: int | None = None
    status: str
    error_code: str = "NoError"
    info: str | None = None
    vendor_id: str | None = None
    vendor_error_code: str | None = None
    timestamp: datetime | None = None


class ReportedVariable(_Model):
    """One attribute of one variable of a 2.0.1 charger's device model.

    ``evse_id`` and ``connector_id`` are 0 when the component is not tied to
    an EVSE or connector; instances are "" when the component or variable has
    none, so that every attribute has one key.
    """

    component: str
    component_instance: str = ""
    evse_id: int = 0
    connector_id: int = 0
    variable: str
    variable_instance: str = ""
    attribute_type: str = "Actual"
    value: str | None = None
    mutability: str | None = None
    persistent: bool | None = None
    constant: bool | None = None
    data_type: str | None = None
    unit: str | None = None


class VariablesReported(_Model):
    """One part of a 2.0.1 NotifyReport (fire-and-forget).

    A report answers one GetBaseReport / GetReport (``request_id``) and may
    come in several parts (``seq_no``, ``tbc``: more parts to come).
    """

    kind: Literal["variables_reported"] = "variables_reported"
    request_id: int
    seq_no: int
    tbc: bool = False
    generated_at: datetime
    variables: tuple[ReportedVariable, ...] = ()


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
    | TransactionUpdated
    | TransactionEnded
    | MeterReadings
    | StatusChanged
    | HeartbeatSeen
    | VariablesReported
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
    """``id_token_info`` is None only for a 2.0.1 start without an id token."""

    kind: Literal["start"] = "start"
    transaction_id: str
    id_token_info: IdTokenInfo | None
    total_cost: Decimal | None = None


class TransactionDecision(_Model):
    """Answer to ``TransactionUpdated``; ``total_cost`` is the running cost."""

    kind: Literal["transaction"] = "transaction"
    id_token_info: IdTokenInfo | None = None
    total_cost: Decimal | None = None


class StopDecision(_Model):
    kind: Literal["stop"] = "stop"
    id_token_info: IdTokenInfo | None = None
    total_cost: Decimal | None = None


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
    | TransactionDecision
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
    """1.6 RemoteStartTransaction / 2.0.1 RequestStartTransaction.

    ``connector_id`` is the 2.0.1 evseId. ``remote_start_id`` comes back in
    2.0.1's TransactionEvent, which ties the charger's transaction to the
    session that asked for it; the SG sets it to the session id.
    """

    kind: Literal["remote_start"] = "remote_start"
    connector_id: int | None
    id_token: str
    remote_start_id: int | None = None
    id_token_type: str = "Central"


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
    {"disconnected", "meter_values", "status", "heartbeat", "variables_reported"},
)
