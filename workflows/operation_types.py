"""The interface of charger operations that outlive their command.

A reservation holds a connector until it expires, is cancelled or is used; a
firmware update and a log upload go on at the charger long after it answered,
reporting through status notifications. Each is a workflow of its own
(``Reservation``, ``FirmwareUpdate``, ``LogUpload``); the API, the ingress and
the workflows import these names, inputs and views, the bodies live in
``workflows/reservation.py`` and ``workflows/firmware.py``.

The workflows never branch on the OCPP version: the API builds the
version-specific calls and hands them over in the input.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from bus.contract import CommandResult, OcppCall

RESERVATION = "Reservation"
FIRMWARE_UPDATE = "FirmwareUpdate"
LOG_UPLOAD = "LogUpload"

# Handler names, as they appear in Temporal UI.
ANSWER = "answer"  # update: the charger's answer to the operation's command
CANCEL = "cancel"  # update: cancel a reservation (CancelReservation)
USED = "used"  # signal: a transaction started on the reservation
CHARGER_STATUS = "charger_status"  # signal: a status notification of the charger
VIEW = "view"  # query

# Activity: look for a session that used a reservation.
FIND_RESERVATION_USE = "find_reservation_use"

# Typed failure of the ``cancel`` update.
RESERVATION_NOT_ACTIVE = "ReservationNotActive"

# The first command's answers that mean the charger took the operation on; a
# 1.6 UpdateFirmware or GetDiagnostics answer has no status at all.
OPERATION_ACCEPTED: frozenset[str | None] = frozenset(
    {None, "Accepted", "AcceptedCanceled"}
)


def reservation_workflow_id(charger_id: str, reservation_id: int) -> str:
    """Return the id of the workflow of ``charger_id``'s ``reservation_id``."""
    return f"reservation-{charger_id}-{reservation_id}"


def firmware_workflow_id(charger_id: str) -> str:
    """Return the id of ``charger_id``'s firmware update (one at a time)."""
    return f"firmware-{charger_id}"


def log_workflow_id(charger_id: str) -> str:
    """Return the id of ``charger_id``'s log upload (one at a time)."""
    return f"log-{charger_id}"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class StatusNotice(_Model):
    """Signal ``charger_status``: what a charger's notification reported.

    ``request_id`` is the 2.0.1 requestId (None in 1.6, where one operation
    of a kind runs at a time); ``at`` is when the SG received it.
    """

    action: str
    status: str
    request_id: int | None = None
    at: datetime


# -- Reservations ----------------------------------------------------------------


class ReservationState(StrEnum):
    """Where a reservation is; all but Requested and Reserved are final."""

    REQUESTED = "Requested"  # ReserveNow sent
    RESERVED = "Reserved"  # the charger holds the connector
    USED = "Used"  # a transaction started on it
    CANCELLED = "Cancelled"  # by an operator, or removed by the charger
    EXPIRED = "Expired"
    REJECTED = "Rejected"  # the charger refused the ReserveNow
    FAILED = "Failed"  # the ReserveNow got no answer (offline, silent)


class ReservationInput(_Model):
    """Input of ``Reservation``: one per reservation.

    ``reserve`` and ``cancel`` are the version's ReserveNow and
    CancelReservation; ``connector_id`` is the 1.6 connector or the 2.0.1
    EVSE, 0 for any.
    """

    reservation_id: int
    charger_id: str
    connector_id: int
    id_token: str
    expires_at: datetime
    reserve: OcppCall
    cancel: OcppCall
    requested_by: str


class ReservationView(_Model):
    """Query ``view``: the reservation as the API shows it (also its memo)."""

    reservation_id: int
    charger_id: str
    connector_id: int
    id_token: str
    expires_at: datetime
    state: ReservationState
    requested_by: str
    created_at: datetime
    ended_at: datetime | None = None
    reason: str | None = None
    transaction_id: str | None = None  # of the transaction that used it
    answer: CommandResult | None = None  # the charger's answer to ReserveNow


class ReservationUse(_Model):
    """Signal ``used``: a transaction started on the reservation.

    The ingress sends it when a StartTransaction / TransactionEvent Started
    names the reservation; ``find_reservation_use`` returns one from the
    session table.
    """

    transaction_id: str | None
    id_token: str | None
    connector_id: int | None
    at: datetime


class CancelRequest(_Model):
    """Update ``cancel``: an operator cancels the reservation."""

    requested_by: str


class ReservationUseQuery(_Model):
    """Activity ``find_reservation_use``: a session that may have used it.

    A session of ``id_token`` on ``charger_id`` (on ``connector_id`` unless 0)
    opened between ``since`` and ``until``.
    """

    charger_id: str
    connector_id: int
    id_token: str
    since: datetime
    until: datetime


# -- Firmware updates and log uploads ----------------------------------------------


class OperationState(StrEnum):
    """Where a firmware update or log upload is; the last four are final."""

    REQUESTED = "Requested"  # the command is on its way
    IN_PROGRESS = "InProgress"  # accepted; following the notifications
    SUCCEEDED = "Succeeded"  # Installed / Uploaded
    FAILED = "Failed"  # a failure status, or the command got no answer
    REJECTED = "Rejected"  # the charger refused the command
    TIMED_OUT = "TimedOut"  # no final status by the deadline


class OperationInput(_Model):
    """Input of ``FirmwareUpdate`` and ``LogUpload``.

    ``command`` is the version's UpdateFirmware, GetDiagnostics or GetLog;
    ``request_id`` the 2.0.1 requestId the notifications carry (None in 1.6).
    Without a final status by ``deadline`` the operation ends TimedOut.
    """

    charger_id: str
    command: OcppCall
    requested_by: str
    request_id: int | None
    deadline: datetime


class StatusSeen(_Model):
    status: str
    at: datetime


class OperationView(_Model):
    """Query ``view``: the operation as the API shows it.

    ``status`` is the last status the charger reported, ``statuses`` all of
    them in order.
    """

    charger_id: str
    action: str
    request_id: int | None
    state: OperationState
    requested_by: str
    created_at: datetime
    deadline: datetime
    status: str | None = None
    statuses: tuple[StatusSeen, ...] = ()
    answer: CommandResult | None = None
    ended_at: datetime | None = None
    reason: str | None = None


# -- Which notification goes to which workflow ------------------------------------


def _firmware(charger_id: str, payload: Mapping[str, Any]) -> str:
    return firmware_workflow_id(charger_id)


def _log(charger_id: str, payload: Mapping[str, Any]) -> str:
    return log_workflow_id(charger_id)


def _reservation(charger_id: str, payload: Mapping[str, Any]) -> str:
    return reservation_workflow_id(charger_id, int(payload["reservationId"]))


@dataclass(frozen=True)
class NoticeRoute:
    """Where a charger notification goes, and where its fields are.

    Attributes:
        workflow_id: the workflow that follows it, from the charger id and
            the payload (raises KeyError / ValueError on a payload without).
        status_field: the payload field with the status.
        request_field: the payload field with the 2.0.1 requestId, if any.
    """

    workflow_id: Callable[[str, Mapping[str, Any]], str]
    status_field: str = "status"
    request_field: str | None = None


NOTICE_ROUTES: Mapping[str, NoticeRoute] = {
    # 1.6 and 2.0.1 (requestId in 2.0.1 only)
    "FirmwareStatusNotification": NoticeRoute(_firmware, request_field="requestId"),
    "DiagnosticsStatusNotification": NoticeRoute(_log),  # 1.6
    "LogStatusNotification": NoticeRoute(_log, request_field="requestId"),  # 2.0.1
    "ReservationStatusUpdate": NoticeRoute(  # 2.0.1
        _reservation, status_field="reservationUpdateStatus"
    ),
}
