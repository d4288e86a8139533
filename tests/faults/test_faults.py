"""Faults while real chargers run sessions; then nothing lost, nothing twice.

Each test starts a fleet of real OCPP clients (half 1.6, half 2.0.1) on two
gateways, lets them charge, breaks one component, lets it come back, lets
the chargers finish and deliver everything they queued, waits until every
session is billed, and reconciles the chargers' ledgers with PostgreSQL.

``MOOVOLT_FAULTS_POSTGRES_DOWN_S`` (default 60) is how long PostgreSQL stays
stopped; ``MOOVOLT_FAULTS_CHARGERS`` (default 6) how many chargers run.
"""

import asyncio
import contextlib
import os
import secrets
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest

from tests.faults.fleet import FaultCharger, Fleet
from tests.faults.ledger import Transaction
from tests.faults.reconcile import Report, reconcile, unbilled
from tests.faults.services import Services
from tests.integration.stack import Stack

pytestmark = pytest.mark.faults

POSTGRES_DOWN_S = float(os.environ.get("MOOVOLT_FAULTS_POSTGRES_DOWN_S", "60"))
# At least one 1.6 and one 2.0.1 charger on the gateway that is killed.
CHARGERS = max(int(os.environ.get("MOOVOLT_FAULTS_CHARGERS", "6")), 2)
CHARGING_TIMEOUT_S = 60.0
WARMUP_S = 2.0  # once all charge, so that calls are in flight when it strikes
RECOVERY_S = 5.0  # and go on for a while after the component is back
DOWN_S = 3.0  # a killed worker stays away this long
RABBIT_DOWN_S = 5.0
# Longer than the gateway's decision timeout: chargers get errors and retry.
TEMPORAL_DOWN_S = 12.0
MOVE_TIMEOUT_S = 30.0
FINISH_TIMEOUT_S = 150.0
SETTLE_TIMEOUT_S = 150.0
TEST_TIMEOUT_S = 300.0


@dataclass
class Scene:
    """What a fault acts on, and when the broken component was away."""

    stack: Stack
    services: Services
    fleet: Fleet
    operator_token: str
    went_down: datetime | None = None
    came_back: datetime | None = None
    notes: list[str] = field(default_factory=list)

    def down(self) -> None:
        self.went_down = datetime.now(UTC)

    def up(self) -> None:
        self.came_back = datetime.now(UTC)


async def kill_gateway(scene: Scene) -> None:
    """kill -9 one of two gateways; its chargers move to the other.

    A remote stop issued through the API after the move must reach a moved
    charger on its new gateway.
    """
    moved = [c for c in scene.fleet.chargers if c.order[0] == "gateway"]
    targets = _hold_one_of_each(moved)
    scene.down()
    scene.stack.processes["gateway"].kill(signal.SIGKILL)
    async with asyncio.timeout(MOVE_TIMEOUT_S):
        await scene.fleet.connected_to("gateway2", moved)
    await _stop_held(scene, targets, on="gateway2")
    scene.stack.processes["gateway"].start()
    await scene.stack.wait_ready("gateway", scene.stack.gateway_ports["gateway"])
    scene.up()


async def kill_worker(scene: Scene) -> None:
    """kill -9 the SG worker (ingress, workflows, activities), then start it."""
    worker = scene.stack.processes["worker"]
    scene.down()
    worker.kill(signal.SIGKILL)
    await asyncio.sleep(DOWN_S)
    worker.start()
    scene.up()


async def restart_rabbitmq(scene: Scene) -> None:
    """Stop RabbitMQ, wait, start it again; commands still reach chargers."""
    targets = _hold_one_of_each(scene.fleet.chargers)
    scene.down()
    await scene.services.rabbit.stop()
    await asyncio.sleep(RABBIT_DOWN_S)
    await scene.services.rabbit.start()
    scene.up()
    # The operator's stop once the worker is ready and the gateways answer
    # chargers again: both reconnect on their own, a few seconds later.
    assert scene.came_back is not None
    async with asyncio.timeout(MOVE_TIMEOUT_S):
        await _worker_ready(scene.stack)
        await scene.fleet.answered_since(scene.came_back)
    await _stop_held(scene, targets)


async def stop_postgres(scene: Scene) -> None:
    """Stop PostgreSQL for ``POSTGRES_DOWN_S``."""
    scene.down()
    await scene.services.postgres.stop()
    await asyncio.sleep(POSTGRES_DOWN_S)
    await scene.services.postgres.start()
    scene.up()


async def restart_temporal(scene: Scene) -> None:
    """kill -9 the Temporal dev server, then start it on its SQLite file."""
    temporal = scene.stack.processes["temporal"]
    scene.down()
    temporal.kill(signal.SIGKILL)
    await asyncio.sleep(TEMPORAL_DOWN_S)
    temporal.start()
    await scene.stack.wait_temporal()
    scene.up()


FAULTS: dict[str, Callable[[Scene], Awaitable[None]]] = {
    "gateway-kill-9": kill_gateway,
    "worker-kill-9": kill_worker,
    "rabbitmq-restart": restart_rabbitmq,
    "postgres-stop": stop_postgres,
    "temporal-restart": restart_temporal,
}
TIMEOUTS = {"postgres-stop": TEST_TIMEOUT_S + POSTGRES_DOWN_S}


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(
            name, marks=pytest.mark.timeout(TIMEOUTS.get(name, TEST_TIMEOUT_S))
        )
        for name in FAULTS
    ],
)
async def test_nothing_lost_nothing_twice(
    fault: str,
    fault_stack: Stack,
    services: Services,
    operator_token: str,
    fault_reports: list[Report],
) -> None:
    await _heal(fault_stack, services)
    fleet = Fleet(await _register_fleet(fault_stack, fault))
    scene = Scene(fault_stack, services, fleet, operator_token)
    problems: list[str] = []
    fleet.start()
    try:
        async with asyncio.timeout(CHARGING_TIMEOUT_S):
            await fleet.charging()
        await asyncio.sleep(WARMUP_S)
        try:
            await FAULTS[fault](scene)
        except Exception as exc:
            # Reconciled all the same: the table shows what it cost.
            problems.append(f"the fault's own steps failed: {exc!r}")
            for charger in fleet.chargers:
                charger.hold = False
            await _heal(fault_stack, services)
        await asyncio.sleep(RECOVERY_S)
        try:
            await fleet.finish(FINISH_TIMEOUT_S)
        except TimeoutError:
            left = sum(c.unanswered for c in fleet.chargers)
            problems.append(f"{left} charger calls unanswered after the fault")
        else:
            if not await _settled(fault_stack, fleet):
                problems.append(f"sessions not all billed in {SETTLE_TIMEOUT_S} s")
    finally:
        await fleet.close()

    report = await reconcile(fault_stack, fault, fleet.ledgers)
    report.problems[:0] = problems + _untouched(scene)
    report.notes += scene.notes
    fault_reports.append(report)
    assert report.ok, f"{report.table()}\nlogs: {fault_stack.logs}"


def _untouched(scene: Scene) -> list[str]:
    """Say if the fault struck no running transaction of an OCPP version.

    A fault that struck no running session would prove nothing. Notes how
    many chargers had one open while the component was away.
    """
    if scene.went_down is None:
        return ["the fault never struck"]
    down, up = scene.went_down, scene.came_back or datetime.now(UTC)
    struck = [
        charger
        for charger in scene.fleet.chargers
        if any(
            tx.started_at <= up and (tx.stopped_at is None or tx.stopped_at >= down)
            for tx in charger.ledger.transactions
        )
    ]
    scene.notes.append(
        f"{len(struck)} of {len(scene.fleet.chargers)} chargers had a transaction"
        f" open during the fault ({(up - down).total_seconds():.1f} s)"
    )
    return [
        f"the fault struck no running {version} transaction"
        for version in ("1.6", "2.0.1")
        if not any(charger.ledger.version == version for charger in struck)
    ]


async def _heal(stack: Stack, services: Services) -> None:
    """Bring back whatever an earlier failed test left down."""
    await services.ensure_running()
    for name, process in stack.processes.items():
        if process.popen is None or process.popen.poll() is not None:
            process.start()
            if name == "temporal":
                await stack.wait_temporal()
    for name, port in stack.gateway_ports.items():
        await stack.wait_ready(name, port)
    async with asyncio.timeout(CHARGING_TIMEOUT_S):
        await _worker_ready(stack)


async def _worker_ready(stack: Stack) -> None:
    """Wait until the worker's ``/readyz`` says bus, Temporal, database are up."""
    url = f"http://127.0.0.1:{stack.worker_health_port}/readyz"
    async with httpx.AsyncClient(timeout=5) as http:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.2)


async def _register_fleet(stack: Stack, fault: str) -> list[FaultCharger]:
    """Register the fault's chargers: 1.6 and 2.0.1 alternately, both gateways."""
    gateways = list(stack.gateway_ports)
    tag = secrets.token_hex(2)
    chargers = []
    for number in range(CHARGERS):
        charger_id = f"{fault}-{tag}-{number}"
        await stack.sql(
            "INSERT INTO charger (id, registration_status, connected, created_at)"
            " VALUES ($1, 'Accepted', false, now())",
            charger_id,
        )
        urls = {name: stack.charger_url(charger_id, name) for name in gateways}
        version = ("1.6", "2.0.1")[number % 2]
        home = gateways[(number // 2) % len(gateways)]
        chargers.append(FaultCharger(charger_id, version, urls, home))
    return chargers


async def _settled(stack: Stack, fleet: Fleet) -> bool:
    """Wait until every transaction's session is billed; False on timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_TIMEOUT_S
    while await unbilled(stack, fleet.ledgers):
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.5)
    return True


def _hold_one_of_each(chargers: list[FaultCharger]) -> list[FaultCharger]:
    """Pick a charger of each version whose session runs until stopped."""
    targets = [
        next(c for c in chargers if c.ledger.version == version)
        for version in ("1.6", "2.0.1")
    ]
    for target in targets:
        target.hold = True
    return targets


async def _stop_held(
    scene: Scene, targets: list[FaultCharger], on: str | None = None
) -> None:
    """Stop each target's held session through the API; check where it went.

    Args:
        scene: the fault's scene.
        targets: chargers whose session is held.
        on: the gateway the stop must reach each charger on, if it matters.
    """
    stopped = await asyncio.gather(*(_remote_stop(scene, t) for t in targets))
    for target, tx in zip(targets, stopped, strict=True):
        target.hold = False
        if on is not None:
            assert tx.remote_stop_gateway == on, tx
        scene.notes.append(
            f"remote stop through the API reached {target.charger_id}"
            f" ({target.ledger.version}) on {tx.remote_stop_gateway}"
        )


async def _remote_stop(scene: Scene, charger: FaultCharger) -> Transaction:
    """Stop ``charger``'s held session through the API, once it is Charging.

    Returns:
        The charger's transaction, once the charger has accepted the stop.
    """
    stack = scene.stack
    headers = {"Authorization": f"Bearer {scene.operator_token}"}
    async with (
        asyncio.timeout(MOVE_TIMEOUT_S),
        httpx.AsyncClient(base_url=stack.api_url, timeout=60) as http,
    ):
        while True:
            tx = charger.current
            rows = []
            if tx is not None and tx.transaction_id is not None:
                rows = await stack.sql(
                    "SELECT id FROM session WHERE charger_id = $1"
                    " AND transaction_id = $2 AND state = 'Charging'",
                    charger.charger_id,
                    tx.transaction_id,
                )
            if tx is not None and rows:
                break
            await asyncio.sleep(0.2)
        response = await http.post(f"/sessions/{rows[0]['id']}/stop", headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "Accepted", response.text
    assert tx.stop_requested.is_set(), tx
    return tx
