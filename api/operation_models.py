"""What the reservation, firmware and log routes read and return.

Each of these runs as a workflow that outlives its first command (see
``workflows/operation_types.py``); the request models render the first
command for the charger's OCPP version, as ``api.command_models`` does.
"""

from datetime import datetime, timedelta
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field

from api.command_models import (
    DEFAULT_TOKEN_TYPE,
    ID_TAG_16,
    V16,
    V201,
    IdTokenType,
    Payload,
    RequestBody,
    Uri,
    invalid,
    iso,
    not_in,
    present,
)
from api.models import CommandAnswer, Page
from bus.contract import CommandResult, OcppCall, OcppVersion
from workflows.operation_types import (
    OperationState,
    OperationView,
    ReservationState,
    ReservationView,
)

# An operation's deadline is at most this far beyond its retrieval date.
MAX_TIMEOUT_S = 30 * 24 * 3600


def answer_of(result: CommandResult | None) -> CommandAnswer | None:
    """Return the public form of a charger's answer."""
    if result is None:
        return None
    return CommandAnswer(
        outcome=result.outcome, status=result.status, payload=result.payload
    )


# -- Reservations ----------------------------------------------------------------


class ReservationCreate(RequestBody):
    """Reserve a connector (or the charger) for one id token until ``expires_at``."""

    connector_id: int = Field(
        default=0, ge=0, description="1.6 connector or 2.0.1 EVSE; 0 for any."
    )
    id_token: str = Field(min_length=1, max_length=36)
    id_token_type: IdTokenType | None = Field(
        default=None, description=f"2.0.1; {DEFAULT_TOKEN_TYPE} if left out."
    )
    parent_id_token: str | None = Field(default=None, min_length=1, max_length=36)
    expires_at: AwareDatetime

    def reserve(self, version: OcppVersion, reservation_id: int) -> OcppCall:
        """Return the ReserveNow of ``version``.

        Raises:
            ProblemError: a field has no place in ``version`` (409) or is too
                long for it (422).
        """
        if version is V201:
            kind = self.id_token_type or DEFAULT_TOKEN_TYPE
            group = None
            if self.parent_id_token is not None:
                group = {"idToken": self.parent_id_token, "type": kind}
            payload = present(
                id=reservation_id,
                expiryDateTime=iso(self.expires_at),
                idToken={"idToken": self.id_token, "type": kind},
                evseId=self.connector_id or None,
                groupIdToken=group,
            )
            return OcppCall(action="ReserveNow", payload=payload)

        if self.id_token_type is not None:
            raise not_in(V16, "id token types (id_token_type)")
        for name, value in (
            ("idToken", self.id_token),
            ("parentIdToken", self.parent_id_token),
        ):
            if value is not None and len(value) > ID_TAG_16:
                raise invalid(
                    name, f"OCPP 1.6 id tags have at most {ID_TAG_16} characters"
                )
        payload = present(
            connectorId=self.connector_id,
            expiryDate=iso(self.expires_at),
            idTag=self.id_token,
            parentIdTag=self.parent_id_token,
            reservationId=reservation_id,
        )
        return OcppCall(action="ReserveNow", payload=payload)


def cancel_call(reservation_id: int) -> OcppCall:
    """Return the CancelReservation of ``reservation_id`` (the same in both)."""
    return OcppCall(
        action="CancelReservation", payload={"reservationId": reservation_id}
    )


class ReservationPublic(BaseModel):
    """A reservation and how it stands or ended."""

    reservation_id: int
    workflow_id: str
    charger_id: str
    connector_id: int
    id_token: str
    expires_at: datetime
    state: ReservationState
    requested_by: str
    created_at: datetime
    ended_at: datetime | None = None
    reason: str | None = None
    transaction_id: str | None = Field(
        default=None, description="The transaction that used it."
    )
    answer: CommandAnswer | None = Field(
        default=None, description="The charger's answer to ReserveNow."
    )

    @classmethod
    def of(cls, view: ReservationView, workflow_id: str) -> "ReservationPublic":
        """Return the public form of a reservation workflow's view."""
        return cls(
            **view.model_dump(exclude={"answer"}),
            workflow_id=workflow_id,
            answer=answer_of(view.answer),
        )


class ReservationPage(Page[ReservationPublic]):
    pass


# -- Firmware updates and log uploads ----------------------------------------------


class _Operation(RequestBody):
    location: Uri
    retries: int | None = Field(default=None, ge=0, le=100)
    retry_interval_s: int | None = Field(default=None, ge=0, le=86400)
    timeout_s: int = Field(
        default=3600,
        ge=1,
        le=MAX_TIMEOUT_S,
        description="How long after its start the operation may take to reach "
        "a final status before it counts as timed out.",
    )

    def deadline(self, start: datetime) -> datetime:
        """Return when the operation, starting at ``start``, times out."""
        return start + timedelta(seconds=self.timeout_s)


class FirmwareUpdateCreate(_Operation):
    """Have the charger download and install firmware (UpdateFirmware)."""

    retrieve_at: AwareDatetime | None = Field(
        default=None, description="Now if left out."
    )
    install_at: AwareDatetime | None = Field(default=None, description="2.0.1.")
    signing_certificate: str | None = Field(
        default=None, max_length=5500, description="2.0.1, PEM."
    )
    signature: str | None = Field(default=None, max_length=800, description="2.0.1.")

    def start(self, now: datetime) -> datetime:
        """Return when the charger starts: the later of the dates it is given."""
        return max(now, self.retrieve_at or now, self.install_at or now)

    def call(
        self, version: OcppVersion, request_id: int | None, now: datetime
    ) -> OcppCall:
        """Return the UpdateFirmware of ``version``.

        Raises:
            ProblemError: 409 when a field has no place in ``version``.
        """
        retrieve = iso(self.retrieve_at or now)
        if version is V201:
            firmware = present(
                location=self.location,
                retrieveDateTime=retrieve,
                installDateTime=iso(self.install_at) if self.install_at else None,
                signingCertificate=self.signing_certificate,
                signature=self.signature,
            )
            payload = present(
                requestId=request_id,
                firmware=firmware,
                retries=self.retries,
                retryInterval=self.retry_interval_s,
            )
            return OcppCall(action="UpdateFirmware", payload=payload)

        for name in ("install_at", "signing_certificate", "signature"):
            if getattr(self, name) is not None:
                raise not_in(V16, f"{name} in UpdateFirmware (signed firmware)")
        payload = present(
            location=self.location,
            retrieveDate=retrieve,
            retries=self.retries,
            retryInterval=self.retry_interval_s,
        )
        return OcppCall(action="UpdateFirmware", payload=payload)


class LogUploadCreate(_Operation):
    """Have the charger upload a log (1.6 GetDiagnostics, 2.0.1 GetLog)."""

    log_type: Literal["DiagnosticsLog", "SecurityLog"] = Field(
        default="DiagnosticsLog", description="SecurityLog: 2.0.1."
    )
    oldest: AwareDatetime | None = Field(
        default=None, description="1.6 startTime, 2.0.1 oldestTimestamp."
    )
    latest: AwareDatetime | None = Field(
        default=None, description="1.6 stopTime, 2.0.1 latestTimestamp."
    )

    def call(self, version: OcppVersion, request_id: int | None) -> OcppCall:
        """Return the GetDiagnostics (1.6) or GetLog (2.0.1).

        Raises:
            ProblemError: 409 when a field has no place in ``version``.
        """
        oldest = iso(self.oldest) if self.oldest else None
        latest = iso(self.latest) if self.latest else None
        if version is V201:
            payload: Payload = present(
                logType=self.log_type,
                requestId=request_id,
                log=present(
                    remoteLocation=self.location,
                    oldestTimestamp=oldest,
                    latestTimestamp=latest,
                ),
                retries=self.retries,
                retryInterval=self.retry_interval_s,
            )
            return OcppCall(action="GetLog", payload=payload)

        if self.log_type != "DiagnosticsLog":
            raise not_in(V16, f"{self.log_type} to upload")
        payload = present(
            location=self.location,
            retries=self.retries,
            retryInterval=self.retry_interval_s,
            startTime=oldest,
            stopTime=latest,
        )
        return OcppCall(action="GetDiagnostics", payload=payload)


class StatusSeenPublic(BaseModel):
    status: str
    at: datetime = Field(description="When the SG received it.")


class OperationPublic(BaseModel):
    """A firmware update or log upload and how it stands or ended."""

    workflow_id: str
    charger_id: str
    action: str = Field(description="The OCPP call sent.")
    request_id: int | None = Field(description="2.0.1 requestId; None in 1.6.")
    state: OperationState
    status: str | None = Field(description="The last status the charger reported.")
    statuses: list[StatusSeenPublic]
    requested_by: str
    created_at: datetime
    deadline: datetime
    ended_at: datetime | None = None
    reason: str | None = None
    answer: CommandAnswer | None = Field(
        default=None, description="The charger's answer to the command."
    )

    @classmethod
    def of(cls, view: OperationView, workflow_id: str) -> "OperationPublic":
        """Return the public form of an operation workflow's view."""
        return cls(
            **view.model_dump(exclude={"answer", "statuses"}),
            statuses=[StatusSeenPublic(**s.model_dump()) for s in view.statuses],
            workflow_id=workflow_id,
            answer=answer_of(view.answer),
        )
