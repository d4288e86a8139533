"""OCPP date-times: ISO 8601 on the wire, timezone-aware datetimes inside."""

from datetime import UTC, datetime


def parse_datetime(text: str) -> datetime:
    """Parse an OCPP date-time into an aware datetime.

    A value without an offset is taken as UTC, which both OCPP 1.6 and 2.0.1
    ask chargers to use.

    Raises:
        ValueError: ``text`` is not an ISO 8601 date-time.
    """
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def format_datetime(moment: datetime) -> str:
    """Format ``moment`` as UTC with milliseconds and a ``Z`` suffix."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
