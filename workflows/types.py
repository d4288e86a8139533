"""The interface of the ChargeSession workflow: its input, updates and views.

The ingress, the API and the workflow import these; the workflow body lives in
``workflows/session.py``.
"""

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
)

from billing.tariff import Cost, TariffSnapshot
from bus.contract import Command, CommandResult, IdTokenInfo

CHARGE_SESSION = "ChargeSession"
CHARGER_COMMAND = "ChargerCommand"

# Search attributes, registered by ``temporal/`` at start-up.
CHARGER_ID = SearchAttributeKey.for_keyword("ChargerId")
ID_TOKEN = SearchAttributeKey.for_keyword("IdToken")
SESSION_STATE = SearchAttributeKey.for_keyword("SessionState")

# Update and signal names, as they appear in Temporal UI.
TRANSACTION_STARTED = "transaction_started"
TRANSACTION_UPDATED = "transaction_updated"
TRANSACTION_ENDED = "transaction_ended"
REMOTE_START_RESULT = "remote_start_result"
REQUEST_STOP = "request_stop"
METER_PROGRESS = "meter_progress"
VIEW = "view"


def session_search_attributes(
    charger_id: str, id_token: str | None, state: str
) -> TypedSearchAttributes:
    """Return the search attributes a session workflow starts with."""
    pairs: list[SearchAttributePair[str]] = [
        SearchAttributePair(CHARGER_ID, charger_id),
        SearchAttributePair(SESSION_STATE, state),
    ]
    if id_token:
        pairs.insert(1, SearchAttributePair(ID_TOKEN, id_token))
    return TypedSearchAttributes(pairs)


def session_workflow_id(charger_id: str, transaction_id: str) -> str:
    """Return the id of the workflow of ``charger_id``'s ``transaction_id``."""
    return f"session-{charger_id}-{transaction_id}"


class SessionState(StrEnum):
    """Where a session is; also its ``SessionState`` search attribute."""

    REMOTE_START_REQUESTED = "RemoteStartRequested"
    REMOTE_START_REJECTED = "RemoteStartRejected"
    NEVER_STARTED = "NeverStarted"
    AUTHORIZING = "Authorizing"
    REJECTED = "Rejected"  # the charger started, the id token was not accepted
    CHARGING = "Charging"
    SILENT = "Silent"  # no meter value nor message for too long
    STOPPED = "Stopped"
    BILLED = "Billed"
    PAYMENT_DECLINED = "PaymentDeclined"  # CDR written, the provider refused


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class SessionTimeouts(_Model):
    """The session's timers; ``start_grace_s`` is how long a stop whose start
    has not been seen waits for it (events queued offline come in any order).
    """

    remote_start_s: float
    meter_silence_s: float
    max_duration_s: float
    start_grace_s: float = 60.0


class SessionInput(_Model):
    """Input of ``ChargeSession``: one per transaction.

    ``transaction_id`` is the id the session was opened under; a 2.0.1
    charger answering a remote start names its own, which the workflow
    learns from ``transaction_started``. ``id_token`` is None for a 2.0.1
    transaction that starts before a token is presented. ``carried`` is set
    only when the workflow continues as new, which it does once its history
    passes ``max_history_events`` (or Temporal suggests it).
    """

    session_id: int
    charger_id: str
    transaction_id: str
    connector_id: int | None
    id_token: str | None
    origin: Literal["charger", "operator"]
    tariff: TariffSnapshot
    timeouts: SessionTimeouts
    carried: "SessionProgress | None" = None
    max_history_events: int = 2000


class TransactionStartedInput(_Model):
    """Update ``transaction_started``: the charger began the transaction.

    A 2.0.1 charger may start without an id token (it comes later in
    ``transaction_updated``) and without a start register.
    """

    connector_id: int
    id_token: str | None
    meter_start_wh: Decimal | None
    timestamp: datetime
    transaction_id: str | None = None
    id_token_type: str | None = None


class TransactionUpdatedInput(_Model):
    """Update ``transaction_updated`` (2.0.1): news of a running transaction.

    ``id_token`` is set when a token is presented after the start;
    ``register_wh``/``sampled_at`` are the newest imported-energy register the
    event carried, already stored by the ingress.
    """

    timestamp: datetime
    id_token: str | None = None
    id_token_type: str | None = None
    charging_state: str | None = None
    register_wh: Decimal | None = None
    sampled_at: datetime | None = None


class TransactionVerdict(_Model):
    """Result of ``transaction_updated``: the token's verdict, the running cost."""

    id_token_info: IdTokenInfo | None = None
    total_cost: Decimal | None = None


class TransactionEndedInput(_Model):
    """Update ``transaction_ended``: the charger ended the transaction.

    ``meter_stop_wh`` is None only when neither the stop nor any stored
    sample gave a register. ``first_register_wh``/``first_sample_at`` are the
    earliest stored readings, used when the start itself was never seen.
    """

    meter_stop_wh: Decimal | None
    timestamp: datetime
    id_token: str | None = None
    reason: str | None = None
    id_token_type: str | None = None
    first_register_wh: Decimal | None = None
    first_sample_at: datetime | None = None


class MeterProgress(_Model):
    """Signal ``meter_progress``: the latest energy register seen in PostgreSQL."""

    energy_register_wh: Decimal | None
    sampled_at: datetime


class StopRequest(_Model):
    """Update ``request_stop``: an operator asks for the session to stop."""

    requested_by: str


class SessionProgress(_Model):
    """What the workflow knows; carried across continue-as-new."""

    state: SessionState
    transaction_id: str | None = None  # the charger's, once it named one
    id_token: str | None = None  # presented after the start (2.0.1)
    id_token_info: IdTokenInfo | None = None
    charging_state: str | None = None  # 2.0.1 chargingState
    remote_start: CommandResult | None = None
    connector_id: int | None = None
    meter_start_wh: Decimal | None = None
    started_at: datetime | None = None  # the charger's clock
    opened_at: datetime | None = None  # the workflow's clock, for time limits
    last_register_wh: Decimal | None = None
    last_sample_at: datetime | None = None  # newest sample seen (charger's clock)
    last_activity_at: datetime | None = None  # when the SG last heard (workflow)
    meter_stop_wh: Decimal | None = None
    stopped_at: datetime | None = None
    stop_reason: str | None = None
    cdr_id: str | None = None
    payment_status: str | None = None


class SessionView(_Model):
    """Query ``view``: the session as the API shows it, with its running cost."""

    progress: SessionProgress
    energy_wh: Decimal
    cost: Cost


SessionInput.model_rebuild()


class CommandInput(_Model):
    """Input of ``ChargerCommand``: what to send to which charger, for whom."""

    charger_id: str
    command: Command
    requested_by: str


def command_workflow_id() -> str:
    """Return a fresh ``ChargerCommand`` workflow id."""
    return f"command-{uuid.uuid4()}"
