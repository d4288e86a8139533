"""``moovolt simulate`` against the real stack: what it reports is what was stored.

Ten simulated chargers, half 1.6 and half 2.0.1, run sessions for a few
seconds with heartbeats and reconnects; the report's sessions, completed
sessions and meter samples must be the sessions, CDRs and meter values the
stack wrote, transaction by transaction.
"""

import asyncio
import math
import secrets

import pytest

from moovolt.sim.guard import NotLoopback, check_target
from moovolt.sim.provision import provision
from moovolt.sim.report import CLOSED, RESULT, TIMEOUT
from moovolt.sim.scenario import Scenario, run_scenario
from tests.integration.stack import Stack

CHARGERS = 10
SETTLE_S = 30.0


async def _until(check: object, stack: Stack, query: str, *args: object) -> int:
    """Poll ``query`` (a count) until it equals ``check`` or time runs out."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_S
    while True:
        found = int((await stack.sql(query, *args))[0][0])
        if found == check or loop.time() > deadline:
            return found
        await asyncio.sleep(0.3)


async def test_the_report_matches_what_the_stack_stored(stack: Stack) -> None:
    prefix = f"s{secrets.token_hex(3)}"
    scenario = Scenario(
        url=f"ws://127.0.0.1:{stack.gateway_port}/ocpp/",
        chargers=CHARGERS,
        duration_s=8.0,
        meter_interval_s=0.1,
        meter_values=3,
        sessions=2,
        reconnect_probability=0.5,
        heartbeat_s=0.3,
        pause_s=0.5,
        ramp_s=0.5,
        prefix=prefix,
        call_timeout_s=15.0,
        seed=7,
    )
    assert await provision(scenario, stack.database_url) == CHARGERS
    assert await provision(scenario, stack.database_url) == 0  # idempotent

    report = await asyncio.wait_for(run_scenario(scenario), 90)

    assert report.connect_failures == {}
    assert report.boots == {"Accepted": CHARGERS}
    assert report.call_errors == {}
    assert report.connects == CHARGERS + report.reconnects
    assert report.reconnects > 0
    assert report.sent["Heartbeat"] > 0
    for action, sent in report.sent.items():
        assert report.answered(action, RESULT) == sent, action
        assert report.answered(action, TIMEOUT) == 0
        assert report.answered(action, CLOSED) == 0
        p50, p99 = report.latency_ms(action, 0.5), report.latency_ms(action, 0.99)
        assert math.isfinite(p50) and 0 < p50 <= p99, action
    assert report.sent["StartTransaction"] > 0
    assert report.sent["TransactionEvent/Started"] > 0
    assert report.sessions_started == report.sessions_completed > 0
    assert report.sessions_refused == 0

    like = f"{prefix}-%"
    versions = await stack.sql(
        "SELECT ocpp_version, count(*) FROM charger WHERE id LIKE $1"
        " GROUP BY ocpp_version",
        like,
    )
    assert {row[0]: row[1] for row in versions} == {"1.6": 5, "2.0.1": 5}

    sessions = await stack.sql(
        "SELECT charger_id, transaction_id FROM session WHERE charger_id LIKE $1",
        like,
    )
    assert {(row[0], row[1]) for row in sessions} == report.transactions

    cdrs = await _until(
        report.sessions_completed,
        stack,
        "SELECT count(*) FROM cdr WHERE charger_id LIKE $1",
        like,
    )
    assert cdrs == report.sessions_completed
    billed = await stack.sql(
        "SELECT charger_id, transaction_id FROM cdr WHERE charger_id LIKE $1", like
    )
    assert {(row[0], row[1]) for row in billed} == report.completed

    samples = await _until(
        report.samples_stored,
        stack,
        "SELECT count(*) FROM meter_value WHERE charger_id LIKE $1",
        like,
    )
    assert samples == report.samples_stored


@pytest.mark.parametrize(
    "url",
    ["ws://127.0.0.1:9000/ocpp/", "ws://localhost:9000/ocpp/", "ws://[::1]:9/ocpp/"],
)
def test_loopback_targets_are_allowed(url: str) -> None:
    check_target(url)


@pytest.mark.parametrize(
    "url",
    ["ws://192.0.2.10:9000/ocpp/", "ws://10.0.0.1/ocpp/", "http://127.0.0.1:9000/"],
)
def test_other_targets_are_refused(url: str) -> None:
    with pytest.raises(NotLoopback):
        check_target(url)


def test_a_remote_target_needs_the_explicit_flag() -> None:
    check_target("ws://192.0.2.10:9000/ocpp/", allow_remote=True)
