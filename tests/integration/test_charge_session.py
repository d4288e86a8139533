"""A charge session end to end on the real stack, played by a real 1.6 charger.

Expected figures are worked out by hand from the seeded tariff (0.30 EUR/kWh,
0.02 EUR/min, 1.00 EUR per session, 20 % VAT), not by the code under test.
"""

import asyncio
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import websockets
from ocpp.v16.enums import ChargePointStatus
from temporalio.client import WorkflowExecutionStatus

from tests.integration.charger import connected
from tests.integration.stack import Stack
from workflows.types import CHARGER_ID, ID_TOKEN, SESSION_STATE

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

HISTORIES = Path(__file__).resolve().parent.parent / "histories"
T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T | None]], timeout_s: float = 30.0
) -> T:
    """Return the first non-empty result of ``probe``, polling until timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        result = await probe()
        if result:
            return result
        if loop.time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.2)


async def billed(stack: Stack, charger_id: str, transaction_id: int) -> Any:
    """Wait for the session's CDR and return it."""

    async def probe() -> Any:
        rows = await stack.sql(
            "SELECT * FROM cdr WHERE charger_id = $1 AND transaction_id = $2",
            charger_id,
            str(transaction_id),
        )
        return rows[0] if rows else None

    return await eventually(probe)


async def assert_billed_once(
    stack: Stack, charger_id: str, transaction_id: int, energy_wh: int, minutes: int
) -> None:
    """The session has one CDR and one payment, with hand-computed figures."""
    cdr = await billed(stack, charger_id, transaction_id)
    excl = (
        Decimal(energy_wh) / 1000 * Decimal("0.30")
        + minutes * Decimal("0.02")
        + Decimal("1.00")
    ).quantize(Decimal("0.01"))
    vat = (excl * Decimal("0.20")).quantize(Decimal("0.01"))

    assert cdr["energy_wh"] == energy_wh
    assert cdr["duration_s"] == minutes * 60
    assert cdr["currency"] == "EUR"
    assert cdr["total_excl_vat"] == excl
    assert cdr["vat"] == vat
    assert cdr["total_incl_vat"] == excl + vat

    async def paid() -> Any:
        return await stack.sql("SELECT * FROM payment WHERE cdr_id = $1", cdr["id"])

    payments = await eventually(paid)
    assert len(payments) == 1
    assert payments[0]["amount"] == excl + vat
    cdrs = await stack.sql(
        "SELECT count(*) AS n FROM cdr WHERE charger_id = $1", charger_id
    )
    assert cdrs[0]["n"] == 1


async def workflow_of(stack: Stack, charger_id: str, transaction_id: int) -> Any:
    rows = await stack.sql(
        "SELECT workflow_id FROM session WHERE charger_id = $1 AND transaction_id = $2",
        charger_id,
        str(transaction_id),
    )
    return stack.temporal.get_workflow_handle(rows[0]["workflow_id"])


async def test_charger_initiated_session(stack: Stack, charger_id: str) -> None:
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)

    async with connected(stack.charger_url(charger_id), charger_id) as cp:
        boot = await cp.boot()
        assert boot.status == "Accepted"
        assert boot.interval == 300
        await cp.status(1, ChargePointStatus.available)
        authorized = await cp.authorize("TAG-OK")
        assert authorized.id_tag_info["status"] == "Accepted"

        started = await cp.start_transaction(1, "TAG-OK", t0)
        assert started.id_tag_info["status"] == "Accepted"
        tx = started.transaction_id
        for step in (5, 10, 15):
            await cp.meter(tx, t0 + timedelta(minutes=step), 2500)
        stopped = await cp.stop_transaction(tx, t0 + timedelta(minutes=20))
        assert stopped is not None

    await assert_billed_once(stack, charger_id, tx, energy_wh=7500, minutes=20)

    samples = await stack.sql(
        "SELECT value FROM meter_value WHERE charger_id = $1 AND transaction_id = $2"
        " ORDER BY sampled_at",
        charger_id,
        str(tx),
    )
    assert [s["value"] for s in samples] == [12500, 15000, 17500]

    charger = (await stack.sql("SELECT * FROM charger WHERE id = $1", charger_id))[0]
    assert (charger["vendor"], charger["model"]) == ("moovolt-tests", "TestModel")
    connector = await stack.sql(
        "SELECT status FROM connector WHERE charger_id = $1", charger_id
    )
    assert connector[0]["status"] == "Available"

    handle = await workflow_of(stack, charger_id, tx)
    await handle.result()
    described = await handle.describe()
    assert described.status == WorkflowExecutionStatus.COMPLETED
    attributes = described.typed_search_attributes
    assert attributes.get(CHARGER_ID) == charger_id
    assert attributes.get(ID_TOKEN) == "TAG-OK"
    assert attributes.get(SESSION_STATE) == "Billed"

    if os.environ.get("MOOVOLT_RECORD_HISTORIES"):
        history = await handle.fetch_history()
        (HISTORIES / "charger_initiated_16.json").write_text(history.to_json())


async def test_operator_initiated_session(
    stack: Stack, charger_id: str, api_token: str
) -> None:
    headers = {"Authorization": f"Bearer {api_token}"}
    async with (
        connected(stack.charger_url(charger_id), charger_id) as cp,
        httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=60) as api,
    ):
        await cp.boot()
        response = await api.post(
            f"/chargers/{charger_id}/remote-start",
            json={"connector_id": 1, "id_token": "TAG-OK"},
        )
        assert response.status_code in (200, 201, 202), response.text
        session = response.json()
        assert session["status"] == "Accepted"

        tx = await asyncio.wait_for(cp.remote_started.get(), 30)
        assert str(tx) == session["transaction_id"]
        await cp.meter(tx, datetime.now(UTC), 1200)

        response = await api.post(f"/sessions/{session['session_id']}/stop")
        assert response.status_code in (200, 202), response.text
        assert response.json()["status"] == "Accepted"
        assert await asyncio.wait_for(cp.remote_stopped.get(), 30) == tx

    cdr = await billed(stack, charger_id, tx)
    assert cdr["energy_wh"] == 1200
    handle = await workflow_of(stack, charger_id, tx)
    await handle.result()

    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers) as api:
        listed = await api.get("/cdrs")
        assert listed.status_code == 200, listed.text
        assert cdr["id"] in listed.text


async def test_id_token_verdicts(stack: Stack, charger_id: str) -> None:
    async with connected(stack.charger_url(charger_id), charger_id) as cp:
        await cp.boot()
        verdicts = {
            tag: (await cp.authorize(tag)).id_tag_info["status"]
            for tag in ("TAG-OK", "TAG-BLOCKED", "TAG-EXPIRED", "NO-SUCH-TAG")
        }
        assert verdicts == {
            "TAG-OK": "Accepted",
            "TAG-BLOCKED": "Blocked",
            "TAG-EXPIRED": "Expired",
            "NO-SUCH-TAG": "Invalid",
        }

        started = await cp.start_transaction(1, "TAG-BLOCKED", datetime.now(UTC))
        assert started.id_tag_info["status"] == "Blocked"
        await cp.stop_transaction(
            started.transaction_id, datetime.now(UTC), reason="DeAuthorized"
        )

    state = await eventually(
        lambda: stack.sql(
            "SELECT state FROM session WHERE charger_id = $1 AND state = 'Billed'",
            charger_id,
        )
    )
    assert state[0]["state"] == "Billed"


async def test_unknown_charger_is_refused_at_handshake(stack: Stack) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with connected(stack.charger_url("nobody-knows-me"), "nobody-knows-me"):
            pass
    assert refused.value.response.status_code == 404
    rows = await stack.sql("SELECT id FROM charger WHERE id = 'nobody-knows-me'")
    assert rows == []


async def test_command_to_offline_charger(
    stack: Stack, charger_id: str, api_token: str
) -> None:
    async with httpx.AsyncClient(
        base_url=stack.api_url,
        headers={"Authorization": f"Bearer {api_token}"},
        timeout=60,
    ) as api:
        response = await api.post(
            f"/chargers/{charger_id}/remote-start",
            json={"connector_id": 1, "id_token": "TAG-OK"},
        )
    assert response.status_code == 409, response.text
    assert response.json()["title"] == "charger offline"
    cdrs = await stack.sql("SELECT * FROM cdr WHERE charger_id = $1", charger_id)
    assert cdrs == []


async def test_duplicated_transaction_messages(stack: Stack, charger_id: str) -> None:
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=15)
    async with connected(stack.charger_url(charger_id), charger_id) as cp:
        await cp.boot()
        first = await cp.start_transaction(1, "TAG-OK", t0)
        again = await cp.repeat()
        assert again.transaction_id == first.transaction_id
        assert again.id_tag_info == first.id_tag_info
        tx = first.transaction_id

        await cp.meter(tx, t0 + timedelta(minutes=5), 3000)
        await cp.repeat()
        await cp.stop_transaction(tx, t0 + timedelta(minutes=10))
        await cp.repeat()

        unknown = await cp.stop_transaction(987654321, t0 + timedelta(minutes=10))
        assert unknown is not None

    await assert_billed_once(stack, charger_id, tx, energy_wh=3000, minutes=10)
    samples = await stack.sql(
        "SELECT count(*) AS n FROM meter_value WHERE charger_id = $1", charger_id
    )
    assert samples[0]["n"] == 1
    sessions = await stack.sql(
        "SELECT count(*) AS n FROM session WHERE charger_id = $1", charger_id
    )
    assert sessions[0]["n"] == 1
    unmatched = await stack.sql(
        "SELECT transaction_id FROM unmatched_stop WHERE charger_id = $1", charger_id
    )
    assert [r["transaction_id"] for r in unmatched] == ["987654321"]


async def test_worker_killed_mid_session(stack: Stack, charger_id: str) -> None:
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=40)
    async with connected(stack.charger_url(charger_id), charger_id) as cp:
        await cp.boot()
        tx = (await cp.start_transaction(1, "TAG-OK-2", t0)).transaction_id
        await cp.meter(tx, t0 + timedelta(minutes=10), 4000)

        stack.processes["worker"].kill()
        # The gateway still takes meter values: the bus keeps them.
        await cp.meter(tx, t0 + timedelta(minutes=20), 4000)
        stack.processes["worker"].start()

        await cp.meter(tx, t0 + timedelta(minutes=30), 4000)
        await cp.stop_transaction(tx, t0 + timedelta(minutes=30))

    await assert_billed_once(stack, charger_id, tx, energy_wh=12000, minutes=30)
    samples = await stack.sql(
        "SELECT count(*) AS n FROM meter_value WHERE transaction_id = $1", str(tx)
    )
    assert samples[0]["n"] == 3


async def test_boot_of_a_charger_not_yet_accepted(
    stack: Stack, charger_id: str
) -> None:
    await stack.sql(
        "UPDATE charger SET registration_status = 'Pending' WHERE id = $1", charger_id
    )
    async with connected(stack.charger_url(charger_id), charger_id) as cp:
        boot = await cp.boot()
    assert boot.status == "Pending"
    assert boot.interval == 300
