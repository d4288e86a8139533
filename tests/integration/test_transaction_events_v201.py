"""2.0.1 TransactionEvents in the order chargers really send them.

A 2.0.1 charger queues its transaction events while it is offline and sends
them later, flagged ``offline``; messages get lost (seqNo gaps) or overtake
each other. Whatever the order, each transaction must end as one session with
one CDR priced from the charger's own readings and clock.

Expected figures are worked out by hand from the seeded tariff (0.30 EUR/kWh,
0.02 EUR/min, 1.00 EUR per session, 20 % VAT).
"""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import websockets
from ocpp.v201 import ChargePoint, call

from tests.integration.stack import Stack
from tests.integration.test_charge_session import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

TOKEN = {"idToken": "TAG-OK", "type": "ISO14443"}


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def register(at: datetime, wh: int, context: str) -> dict[str, Any]:
    return {
        "timestamp": iso(at),
        "sampledValue": [
            {
                "value": wh,
                "context": context,
                "measurand": "Energy.Active.Import.Register",
                "unitOfMeasure": {"unit": "Wh"},
            }
        ],
    }


class Station(ChargePoint):  # type: ignore[misc]
    """A 2.0.1 charging station whose messages the test writes one by one."""

    __test__ = False

    async def event(
        self,
        event_type: str,
        transaction_id: str,
        seq_no: int,
        at: datetime,
        trigger: str,
        *,
        wh: int | None = None,
        context: str = "Sample.Periodic",
        id_token: dict[str, str] | None = None,
        offline: bool = False,
        stopped_reason: str | None = None,
    ) -> Any:
        info: dict[str, Any] = {"transactionId": transaction_id}
        if stopped_reason is not None:
            info["stoppedReason"] = stopped_reason
        if event_type == "Updated":
            info["chargingState"] = "Charging"
        return await self.call(
            call.TransactionEvent(
                event_type=event_type,
                timestamp=iso(at),
                trigger_reason=trigger,
                seq_no=seq_no,
                transaction_info=info,
                offline=offline or None,
                evse={"id": 1, "connectorId": 1} if seq_no == 0 else None,
                id_token=id_token,
                meter_value=None if wh is None else [register(at, wh, context)],
            )
        )


@contextlib.asynccontextmanager
async def station(stack: Stack, charger_id: str) -> AsyncIterator[Station]:
    async with websockets.connect(
        stack.charger_url(charger_id),
        subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
    ) as ws:
        assert ws.subprotocol == "ocpp2.0.1"
        cp = Station(charger_id, ws, response_timeout=30)
        loop = asyncio.create_task(cp.start())
        try:
            boot = await cp.call(
                call.BootNotification(
                    charging_station={"model": "T201", "vendorName": "moovolt-tests"},
                    reason="PowerUp",
                )
            )
            assert boot.status == "Accepted"
            yield cp
        finally:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await loop


def expected_total(energy_wh: int, minutes: int) -> Decimal:
    excl = (
        Decimal(energy_wh) / 1000 * Decimal("0.30")
        + minutes * Decimal("0.02")
        + Decimal("1.00")
    ).quantize(Decimal("0.01"))
    return excl + (excl * Decimal("0.20")).quantize(Decimal("0.01"))


async def cdr_of(stack: Stack, charger_id: str, transaction_id: str) -> Any:
    async def probe() -> Any:
        rows = await stack.sql(
            "SELECT * FROM cdr WHERE charger_id = $1 AND transaction_id = $2",
            charger_id,
            transaction_id,
        )
        return rows[0] if rows else None

    return await eventually(probe)


async def assert_one_billed_session(
    stack: Stack, charger_id: str, transaction_id: str, energy_wh: int, minutes: int
) -> Any:
    cdr = await cdr_of(stack, charger_id, transaction_id)
    assert cdr["energy_wh"] == energy_wh
    assert cdr["duration_s"] == minutes * 60
    assert cdr["total_incl_vat"] == expected_total(energy_wh, minutes)

    async def settled() -> Any:
        rows = await stack.sql(
            "SELECT s.state, p.amount FROM session s JOIN payment p ON p.cdr_id = $2"
            " WHERE s.charger_id = $1 AND s.state = 'Billed'",
            charger_id,
            cdr["id"],
        )
        return rows

    [row] = await eventually(settled)
    assert row["amount"] == cdr["total_incl_vat"]
    counts = await stack.sql(
        "SELECT (SELECT count(*) FROM session WHERE charger_id = $1) AS sessions,"
        " (SELECT count(*) FROM cdr WHERE charger_id = $1) AS cdrs",
        charger_id,
    )
    assert (counts[0]["sessions"], counts[0]["cdrs"]) == (1, 1)
    return cdr


async def test_a_session_replayed_hours_later_offline(
    stack: Stack, charger_id: str
) -> None:
    tx = str(uuid.uuid4())
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)
    async with station(stack, charger_id) as cp:
        started = await cp.event(
            "Started",
            tx,
            0,
            t0,
            "Authorized",
            wh=10_000,
            context="Transaction.Begin",
            id_token=TOKEN,
            offline=True,
        )
        assert started.id_token_info["status"] == "Accepted"
        for seq, minutes, wh in ((1, 10, 12_000), (2, 20, 14_000), (3, 30, 16_000)):
            updated = await cp.event(
                "Updated",
                tx,
                seq,
                t0 + timedelta(minutes=minutes),
                "MeterValuePeriodic",
                wh=wh,
                offline=True,
            )
        # 2.0.1 allows totalCost only once charging has ended.
        assert updated.total_cost is None
        ended = await cp.event(
            "Ended",
            tx,
            4,
            t0 + timedelta(minutes=45),
            "EVCommunicationLost",
            wh=17_500,
            context="Transaction.End",
            offline=True,
            stopped_reason="EVDisconnected",
        )

    cdr = await assert_one_billed_session(stack, charger_id, tx, 7_500, 45)
    assert Decimal(str(ended.total_cost)) == cdr["total_incl_vat"]
    assert cdr["started_at"] == t0
    assert cdr["id_token"] == "TAG-OK"
    samples = await stack.sql(
        "SELECT count(*) AS n FROM meter_value WHERE charger_id = $1"
        " AND transaction_id = $2",
        charger_id,
        tx,
    )
    assert samples[0]["n"] == 5


async def test_an_updated_event_after_the_end_changes_no_bill(
    stack: Stack, charger_id: str
) -> None:
    tx = str(uuid.uuid4())
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    async with station(stack, charger_id) as cp:
        await cp.event(
            "Started",
            tx,
            0,
            t0,
            "Authorized",
            wh=1_000,
            context="Transaction.Begin",
            id_token=TOKEN,
        )
        await cp.event(
            "Ended",
            tx,
            2,
            t0 + timedelta(minutes=20),
            "StopAuthorized",
            wh=5_000,
            context="Transaction.End",
            stopped_reason="Local",
        )
        await cdr_of(stack, charger_id, tx)
        late = await cp.event(
            "Updated", tx, 1, t0 + timedelta(minutes=10), "MeterValuePeriodic", wh=3_000
        )
        assert late.id_token_info is None

    await assert_one_billed_session(stack, charger_id, tx, 4_000, 20)
    stored = await stack.sql(
        "SELECT value FROM meter_value WHERE charger_id = $1 AND transaction_id = $2"
        " ORDER BY sampled_at",
        charger_id,
        tx,
    )
    assert [row["value"] for row in stored] == [1_000, 3_000, 5_000]


async def test_lost_events_leave_a_gap_that_is_billed_from_the_ends(
    stack: Stack, charger_id: str
) -> None:
    tx = str(uuid.uuid4())
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=60)
    async with station(stack, charger_id) as cp:
        await cp.event(
            "Started",
            tx,
            0,
            t0,
            "Authorized",
            wh=2_000,
            context="Transaction.Begin",
            id_token=TOKEN,
        )
        # seqNo 1, 2 and 4 never arrive.
        await cp.event(
            "Updated", tx, 3, t0 + timedelta(minutes=30), "MeterValuePeriodic", wh=6_000
        )
        await cp.event(
            "Ended",
            tx,
            5,
            t0 + timedelta(minutes=50),
            "StopAuthorized",
            wh=9_000,
            context="Transaction.End",
            stopped_reason="Local",
        )

    await assert_one_billed_session(stack, charger_id, tx, 7_000, 50)


async def test_an_end_that_overtakes_its_start(stack: Stack, charger_id: str) -> None:
    tx = str(uuid.uuid4())
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=40)
    async with station(stack, charger_id) as cp:
        ended = await cp.event(
            "Ended",
            tx,
            2,
            t0 + timedelta(minutes=40),
            "StopAuthorized",
            wh=8_000,
            context="Transaction.End",
            stopped_reason="Local",
            offline=True,
        )
        assert ended.id_token_info is None
        started = await cp.event(
            "Started",
            tx,
            0,
            t0,
            "Authorized",
            wh=3_000,
            context="Transaction.Begin",
            id_token=TOKEN,
            offline=True,
        )
        assert started.id_token_info["status"] == "Accepted"

    cdr = await assert_one_billed_session(stack, charger_id, tx, 5_000, 40)
    assert cdr["id_token"] == "TAG-OK"


async def test_a_token_presented_after_the_cable(stack: Stack, charger_id: str) -> None:
    tx = str(uuid.uuid4())
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=15)
    async with station(stack, charger_id) as cp:
        started = await cp.event(
            "Started", tx, 0, t0, "CablePluggedIn", wh=500, context="Transaction.Begin"
        )
        assert started.id_token_info is None
        rows = await stack.sql(
            "SELECT state, id_token FROM session WHERE transaction_id = $1", tx
        )
        assert (rows[0]["state"], rows[0]["id_token"]) == ("Authorizing", None)

        authorized = await cp.event(
            "Updated", tx, 1, t0 + timedelta(minutes=1), "Authorized", id_token=TOKEN
        )
        assert authorized.id_token_info["status"] == "Accepted"
        assert "cache_expiry_date_time" in authorized.id_token_info
        await cp.event(
            "Ended",
            tx,
            2,
            t0 + timedelta(minutes=10),
            "EVCommunicationLost",
            wh=2_500,
            context="Transaction.End",
            stopped_reason="EVDisconnected",
        )

    cdr = await assert_one_billed_session(stack, charger_id, tx, 2_000, 10)
    assert cdr["id_token"] == "TAG-OK"


async def test_repeated_events_are_applied_once(stack: Stack, charger_id: str) -> None:
    tx = str(uuid.uuid4())
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)
    async with station(stack, charger_id) as cp:
        for _ in range(2):
            await cp.event(
                "Started",
                tx,
                0,
                t0,
                "Authorized",
                wh=1_000,
                context="Transaction.Begin",
                id_token=TOKEN,
            )
            await cp.event(
                "Updated",
                tx,
                1,
                t0 + timedelta(minutes=5),
                "MeterValuePeriodic",
                wh=2_000,
            )
        for _ in range(2):
            await cp.event(
                "Ended",
                tx,
                2,
                t0 + timedelta(minutes=10),
                "StopAuthorized",
                wh=3_000,
                context="Transaction.End",
                stopped_reason="Local",
            )

    await assert_one_billed_session(stack, charger_id, tx, 2_000, 10)


@pytest.mark.parametrize(
    ("id_token", "status"),
    [
        ({"idToken": "TAG-OK", "type": "ISO14443"}, "Accepted"),
        ({"idToken": "TAG-BLOCKED", "type": "ISO14443"}, "Blocked"),
        ({"idToken": "NOT-A-TAG", "type": "ISO14443"}, "Invalid"),
        ({"idToken": "TAG-OK", "type": "KeyCode"}, "Invalid"),
        ({"idToken": "", "type": "NoAuthorization"}, "Accepted"),
    ],
)
async def test_authorize_by_token_type(
    stack: Stack, charger_id: str, id_token: dict[str, str], status: str
) -> None:
    await stack.sql(
        "UPDATE id_token SET token_type = 'ISO14443' WHERE token = 'TAG-OK'"
    )
    async with station(stack, charger_id) as cp:
        result = await cp.call(call.Authorize(id_token=id_token))
    assert result.id_token_info["status"] == status


async def test_security_events_are_stored(stack: Stack, charger_id: str) -> None:
    at = datetime.now(UTC).replace(microsecond=0)
    async with station(stack, charger_id) as cp:
        await cp.call(
            call.SecurityEventNotification(
                type="InvalidCsmsCertificate", timestamp=iso(at), tech_info="expired"
            )
        )

    async def stored() -> Any:
        return await stack.sql(
            "SELECT event_type, tech_info, occurred_at FROM security_event"
            " WHERE charger_id = $1",
            charger_id,
        )

    [row] = await eventually(stored)
    assert dict(row) == {
        "event_type": "InvalidCsmsCertificate",
        "tech_info": "expired",
        "occurred_at": at,
    }


async def test_status_per_connector_of_an_evse(
    stack: Stack, charger_id: str, api_token: str
) -> None:
    at = datetime.now(UTC).replace(microsecond=0)
    async with station(stack, charger_id) as cp:
        for connector, status in ((1, "Occupied"), (2, "Available")):
            await cp.call(
                call.StatusNotification(
                    timestamp=iso(at),
                    connector_status=status,
                    evse_id=1,
                    connector_id=connector,
                )
            )

        async def connectors() -> Any:
            async with httpx.AsyncClient(base_url=stack.api_url) as client:
                response = await client.get(
                    f"/chargers/{charger_id}",
                    headers={"Authorization": f"Bearer {api_token}"},
                )
            assert response.status_code == 200, response.text
            found = response.json()["connectors"]
            return found if len(found) == 2 else None

        found = await eventually(connectors)
    assert [
        (c["connector_id"], c["evse_connector_id"], c["status"]) for c in found
    ] == [(1, 1, "Occupied"), (1, 2, "Available")]
