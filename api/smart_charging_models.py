"""Smart charging: charging profiles and the composite schedule they make.

The same models for both OCPP versions, as in ``api.command_models``: 1.6
``csChargingProfiles`` with one schedule, 2.0.1 ``chargingProfile`` with a
list of schedules (one here, with the profile's id); ``connector_id`` is the
1.6 connector or the 2.0.1 EVSE (0: the whole charger).
``ChargePointMaxProfile`` (1.6) and ``ChargingStationMaxProfile`` (2.0.1) are
one purpose; ``ChargingStationExternalConstraints`` is 2.0.1's alone.
"""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, Field

from api.command_models import (
    V16,
    V201,
    CommandBody,
    CommandPublic,
    Payload,
    RequestBody,
    invalid,
    iso,
    not_in,
    present,
)
from bus.contract import OcppVersion

ProfilePurpose = Literal[
    "ChargingStationMaxProfile",
    "ChargePointMaxProfile",
    "TxDefaultProfile",
    "TxProfile",
    "ChargingStationExternalConstraints",
]
# Purpose -> its name in 1.6 and in 2.0.1 (None: not in it).
PURPOSES: dict[str, tuple[str | None, str]] = {
    "ChargingStationMaxProfile": ("ChargePointMaxProfile", "ChargingStationMaxProfile"),
    "ChargePointMaxProfile": ("ChargePointMaxProfile", "ChargingStationMaxProfile"),
    "TxDefaultProfile": ("TxDefaultProfile", "TxDefaultProfile"),
    "TxProfile": ("TxProfile", "TxProfile"),
    "ChargingStationExternalConstraints": (None, "ChargingStationExternalConstraints"),
}
RateUnit = Literal["W", "A"]
Limit = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=1)]


def purpose_in(version: OcppVersion, purpose: str | None) -> str | None:
    """Return the name of ``purpose`` in ``version``.

    Raises:
        ProblemError: 409 when ``version`` has no such purpose.
    """
    if purpose is None:
        return None
    name = PURPOSES[purpose][0 if version is V16 else 1]
    if name is None:
        raise not_in(version, f"charging profile purpose {purpose}")
    return name


class SchedulePeriod(RequestBody):
    start_period: int = Field(ge=0, description="Seconds from the schedule's start.")
    limit: Limit
    number_phases: int | None = Field(default=None, ge=1, le=3)

    def ocpp(self) -> Payload:
        return present(
            startPeriod=self.start_period,
            limit=float(self.limit),
            numberPhases=self.number_phases,
        )


class ChargingSchedule(RequestBody):
    charging_rate_unit: RateUnit
    periods: list[SchedulePeriod] = Field(min_length=1, max_length=1024)
    duration: int | None = Field(default=None, ge=0)
    start_schedule: AwareDatetime | None = None
    min_charging_rate: Limit | None = None

    def ocpp(self, **extra: Any) -> Payload:
        return present(
            **extra,
            duration=self.duration,
            startSchedule=iso(self.start_schedule) if self.start_schedule else None,
            chargingRateUnit=self.charging_rate_unit,
            chargingSchedulePeriod=[period.ocpp() for period in self.periods],
            minChargingRate=(
                float(self.min_charging_rate)
                if self.min_charging_rate is not None
                else None
            ),
        )


class ChargingProfileSet(CommandBody):
    """Install a charging profile (SetChargingProfile)."""

    ACTION = "SetChargingProfile"

    connector_id: int = Field(ge=0, description="0: the whole charger.")
    id: int = Field(ge=1, description="chargingProfileId.")
    stack_level: int = Field(ge=0)
    purpose: ProfilePurpose
    kind: Literal["Absolute", "Recurring", "Relative"]
    recurrency_kind: Literal["Daily", "Weekly"] | None = None
    valid_from: AwareDatetime | None = None
    valid_to: AwareDatetime | None = None
    transaction_id: str | None = Field(
        default=None, max_length=36, description="For a TxProfile."
    )
    schedule: ChargingSchedule

    def _common(self, version: OcppVersion) -> Payload:
        return present(
            stackLevel=self.stack_level,
            chargingProfilePurpose=purpose_in(version, self.purpose),
            chargingProfileKind=self.kind,
            recurrencyKind=self.recurrency_kind,
            validFrom=iso(self.valid_from) if self.valid_from else None,
            validTo=iso(self.valid_to) if self.valid_to else None,
        )

    def v16(self) -> Payload:
        transaction: int | None = None
        if self.transaction_id is not None:
            if not self.transaction_id.isdigit():
                raise invalid("transactionId", "OCPP 1.6 transaction ids are integers")
            transaction = int(self.transaction_id)
        profile = present(
            chargingProfileId=self.id,
            transactionId=transaction,
            **self._common(V16),
            chargingSchedule=self.schedule.ocpp(),
        )
        return {"connectorId": self.connector_id, "csChargingProfiles": profile}

    def v201(self) -> Payload:
        profile = present(
            id=self.id,
            transactionId=self.transaction_id,
            **self._common(V201),
            chargingSchedule=[self.schedule.ocpp(id=self.id)],
        )
        return {"evseId": self.connector_id, "chargingProfile": profile}


class ChargingProfileClear(CommandBody):
    """Remove charging profiles: by id, or all that match (ClearChargingProfile)."""

    ACTION = "ClearChargingProfile"

    id: int | None = Field(default=None, ge=1)
    connector_id: int | None = Field(default=None, ge=0)
    purpose: ProfilePurpose | None = None
    stack_level: int | None = Field(default=None, ge=0)

    def v16(self) -> Payload:
        return present(
            id=self.id,
            connectorId=self.connector_id,
            chargingProfilePurpose=purpose_in(V16, self.purpose),
            stackLevel=self.stack_level,
        )

    def v201(self) -> Payload:
        criteria = present(
            evseId=self.connector_id,
            chargingProfilePurpose=purpose_in(V201, self.purpose),
            stackLevel=self.stack_level,
        )
        return present(
            chargingProfileId=self.id, chargingProfileCriteria=criteria or None
        )


class CompositeScheduleGet(CommandBody):
    """Ask for the schedule the charger will follow (GetCompositeSchedule)."""

    ACTION = "GetCompositeSchedule"

    connector_id: int = Field(default=0, ge=0, description="0: the grid connection.")
    duration: int = Field(ge=1, le=7 * 24 * 3600, description="Seconds from now.")
    charging_rate_unit: RateUnit | None = None

    def v16(self) -> Payload:
        return present(
            connectorId=self.connector_id,
            duration=self.duration,
            chargingRateUnit=self.charging_rate_unit,
        )

    def v201(self) -> Payload:
        return present(
            duration=self.duration,
            chargingRateUnit=self.charging_rate_unit,
            evseId=self.connector_id,
        )


# -- Answers -----------------------------------------------------------------------


class SchedulePeriodPublic(BaseModel):
    start_period: int
    limit: Decimal
    number_phases: int | None = None


class CompositeSchedule(BaseModel):
    """A composite schedule, as either version words it."""

    connector_id: int | None = None
    schedule_start: datetime | None = None
    duration: int | None = None
    charging_rate_unit: str | None = None
    periods: list[SchedulePeriodPublic]


class CompositeSchedulePublic(CommandPublic):
    schedule: CompositeSchedule | None = None


def composite_schedule(
    version: OcppVersion, answer: Payload
) -> CompositeSchedule | None:
    """Read the schedule of a GetCompositeSchedule answer, if it has one.

    Raises:
        ValidationError: the answer's schedule is malformed.
    """
    outer: Any = answer if version is V16 else answer.get("schedule")
    schedule: Any = outer.get("chargingSchedule") if version is V16 else outer
    if not isinstance(schedule, dict) or not isinstance(outer, dict):
        return None
    return CompositeSchedule.model_validate(
        {
            "connector_id": outer.get("connectorId", outer.get("evseId")),
            "schedule_start": outer.get("scheduleStart", schedule.get("startSchedule")),
            "duration": schedule.get("duration"),
            "charging_rate_unit": schedule.get("chargingRateUnit"),
            "periods": [
                {
                    "start_period": period.get("startPeriod"),
                    "limit": period.get("limit"),
                    "number_phases": period.get("numberPhases"),
                }
                for period in schedule.get("chargingSchedulePeriod", [])
            ],
        }
    )
