"""Names and payloads of the SG's activities, shared with the workflows.

Workflows call activities by these names, so this module imports nothing that
touches a network and can be passed through the workflow sandbox.
"""

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from billing.tariff import Cost, TariffSnapshot, price
from bus.contract import Command
from bus.domain import DomainEvent
from workflows.types import SessionState

AUTHORIZE = "authorize"
RECORD_START = "record_start"
RECORD_STOP = "record_stop"
RECORD_STATE = "record_state"
RECORD_ID_TOKEN = "record_id_token"
READ_PROGRESS = "read_progress"
WRITE_CDR = "write_cdr"
TAKE_PAYMENT = "take_payment"
SEND_COMMAND = "send_command"
DELIVER_WEBHOOK = "deliver_webhook"
ABANDON_WEBHOOK = "abandon_webhook"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class AuthorizeInput(_Model):
    """Activity ``authorize``: the verdict on ``id_token`` at ``at``."""

    id_token: str
    at: datetime
    id_token_type: str | None = None


class RecordStartInput(_Model):
    """Activity ``record_start``: the transaction began."""

    session_id: int
    state: SessionState
    connector_id: int
    meter_start_wh: Decimal | None
    started_at: datetime


class RecordStopInput(_Model):
    """Activity ``record_stop``: the transaction ended."""

    session_id: int
    meter_stop_wh: Decimal
    energy_wh: Decimal
    stopped_at: datetime
    reason: str | None


class RecordStateInput(_Model):
    """Activity ``record_state``: the session moved to ``state``."""

    session_id: int
    state: SessionState


class RecordIdTokenInput(_Model):
    """Activity ``record_id_token``: a token was presented after the start."""

    session_id: int
    id_token: str
    state: SessionState


class ReadProgressInput(_Model):
    """Activity ``read_progress``: the newest meter data of a transaction."""

    charger_id: str
    transaction_id: str


class CdrInput(_Model):
    """Activity ``write_cdr``: what the CDR is priced from.

    The same figures give the workflow's running cost, so the CDR and the
    last view of the session agree.
    """

    session_id: int
    workflow_id: str
    charger_id: str
    connector_id: int | None
    transaction_id: str
    id_token: str | None
    tariff: TariffSnapshot
    meter_start_wh: Decimal
    meter_stop_wh: Decimal
    started_at: datetime
    stopped_at: datetime


class CdrRecord(_Model):
    """The CDR as stored: the first one written for the session."""

    id: str
    energy_wh: Decimal
    duration_s: int
    cost: Cost


class TakePaymentInput(_Model):
    """Activity ``take_payment``: settle the CDR ``cdr_id``."""

    cdr_id: str
    idempotency_key: str


class CommandRequest(_Model):
    """Activity ``send_command``: send ``command`` to a charger.

    ``command_id`` is chosen by the workflow, so a retried activity keeps it.
    """

    command_id: str
    charger_id: str
    command: Command
    requested_by: str


class Measure(_Model):
    """A session's energy, duration and their price."""

    energy_wh: Decimal
    duration_s: int
    cost: Cost


def measure(
    tariff: TariffSnapshot,
    meter_start_wh: Decimal | None,
    meter_stop_wh: Decimal | None,
    started_at: datetime | None,
    stopped_at: datetime | None,
) -> Measure:
    """Price a session from its register readings and times.

    Used for the running cost and for the CDR alike. Energy is never
    negative (a meter replaced mid-session reads lower); duration is in
    whole seconds, rounded down.

    Args:
        tariff: the session's tariff snapshot.
        meter_start_wh: register at the start, if known.
        meter_stop_wh: register at the stop (or the latest one), if known.
        started_at: when the transaction started, if it did.
        stopped_at: when it stopped, or now for a running session.

    Returns:
        Energy, duration and cost.
    """
    energy = Decimal(0)
    if meter_start_wh is not None and meter_stop_wh is not None:
        energy = max(meter_stop_wh - meter_start_wh, Decimal(0))
    duration = 0
    if started_at is not None and stopped_at is not None:
        duration = max(int((stopped_at - started_at).total_seconds()), 0)
    return Measure(
        energy_wh=energy, duration_s=duration, cost=price(tariff, energy, duration)
    )


class WebhookInput(_Model):
    """Activities ``deliver_webhook`` / ``abandon_webhook``: one event, one hook."""

    webhook_id: int
    event: DomainEvent
