"""Folding fire-and-forget events into one write, without a database."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bus.contract import (
    ChargerDisconnected,
    EventEnvelope,
    MeterReadings,
    MeterSample,
    OcppVersion,
    StatusChanged,
    TransactionStarted,
)
from ingress.events import Batch, SignalThrottle, meter_rows
from store.sessions import start_key

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def envelope(event: object, charger: str = "cp-1", at: datetime = T0) -> EventEnvelope:
    return EventEnvelope.model_validate(
        {
            "message_id": "m-1",
            "charger_id": charger,
            "ocpp_version": OcppVersion.V16,
            "gateway_id": "gw-1",
            "received_at": at,
            "event": event,
        }
    )


def energy(at: datetime, wh: str, unit: str = "Wh") -> MeterSample:
    return MeterSample(timestamp=at, value=Decimal(wh), unit=unit)


def test_repeated_samples_make_one_row() -> None:
    samples = [energy(T0, "100"), energy(T0, "100"), energy(T0 + timedelta(1), "200")]
    rows = meter_rows("cp-1", 1, "7", samples)
    assert [row["value"] for row in rows] == [Decimal(100), Decimal(200)]


def test_progress_keeps_the_newest_register_per_transaction() -> None:
    batch = Batch()
    newer = MeterReadings(
        connector_id=1,
        transaction_id="7",
        samples=(energy(T0 + timedelta(minutes=5), "1.5", unit="kWh"),),
    )
    older = MeterReadings(
        connector_id=1, transaction_id="7", samples=(energy(T0, "1000"),)
    )
    batch.add(envelope(newer))
    batch.add(envelope(older))

    progress = batch.progress[("cp-1", "7")]
    assert progress.energy_register_wh == Decimal(1500)
    assert progress.sampled_at == T0 + timedelta(minutes=5)
    assert len(batch.meter_values) == 2


def test_samples_without_a_transaction_are_stored_but_not_signalled() -> None:
    batch = Batch()
    batch.add(envelope(MeterReadings(connector_id=0, samples=(energy(T0, "5"),))))
    assert len(batch.meter_values) == 1
    assert batch.progress == {}


def test_status_and_disconnect_and_last_seen() -> None:
    batch = Batch()
    later = T0 + timedelta(seconds=30)
    batch.add(envelope(StatusChanged(connector_id=1, status="Charging"), at=T0))
    batch.add(envelope(ChargerDisconnected(close_code=1006), at=later))

    assert batch.statuses[0]["status"] == "Charging"
    assert batch.statuses[0]["status_at"] == T0  # no timestamp: received-at
    assert batch.disconnected == [{"charger_id": "cp-1", "gateway_id": "gw-1"}]
    assert batch.seen == {"cp-1": later}


def test_throttle_lets_one_signal_through_per_interval() -> None:
    throttle = SignalThrottle(interval_s=3600)
    assert throttle.due(("cp-1", "7"))
    assert not throttle.due(("cp-1", "7"))
    assert throttle.due(("cp-1", "8"))
    assert SignalThrottle(interval_s=0).due(("cp-1", "7"))


def test_start_key_is_stable_and_tells_starts_apart() -> None:
    start = TransactionStarted(
        connector_id=1, id_token="TAG", meter_start_wh=Decimal(10), timestamp=T0
    )
    same = TransactionStarted.model_validate(start.model_dump())
    other = start.model_copy(update={"connector_id": 2})
    assert start_key(start) == start_key(same)
    assert start_key(start) != start_key(other)
