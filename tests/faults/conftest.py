"""The fault suite's own services and stack, and the report it prints.

PostgreSQL and RabbitMQ are the suite's own (``tests.faults.services``), so
that it may stop and kill them; Temporal is the stack's own dev server, kept
in SQLite. Two gateways, one worker and the API run as subprocesses. Each
fault's sent-versus-stored table is printed in the terminal summary, whether
or not pytest captures output.
"""

import hashlib
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.faults.reconcile import Report
from tests.faults.services import PostgresCluster, RabbitNode, Services
from tests.integration.stack import Stack, running_stack

REPORTS = pytest.StashKey[list[Report]]()

TARIFF = (Decimal("0.30"), Decimal("0.02"), Decimal("1.00"), Decimal("20"))
TOKENS = ("TAG-OK", "TAG-OK-2")


@pytest.fixture(scope="module")
def services_root() -> Iterator[Path]:
    """A temporary directory the ``postgres`` OS user can reach."""
    root = Path(tempfile.mkdtemp(prefix="moovolt-faults-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the services' and the stack's logs stay after the run."""
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
async def services(
    services_root: Path, logs: Path, run_id: str
) -> AsyncIterator[Services]:
    """Start the suite's PostgreSQL and RabbitMQ; stop them whatever happens."""
    (services_root / "pg").mkdir()
    (services_root / "rabbit").mkdir()
    postgres = PostgresCluster(services_root / "pg", logs / "postgres.log")
    rabbit = RabbitNode(
        services_root / "rabbit", f"moovolt-faults-{run_id}", logs / "rabbitmq.log"
    )
    try:
        postgres.init()
        await postgres.start()
        await rabbit.start()
        yield Services(postgres, rabbit)
    finally:
        await rabbit.stop()
        await postgres.stop()


@pytest.fixture(scope="module")
async def fault_stack(
    services: Services, run_id: str, logs: Path
) -> AsyncIterator[Stack]:
    """Two gateways, a worker, the API and a restartable Temporal, seeded."""
    async with running_stack(
        run_id,
        logs,
        gateways=2,
        pg_port=services.postgres.port,
        amqp_url=services.rabbit.url,
        own_temporal=True,
    ) as stack:
        try:
            await _seed(stack)
            yield stack
        finally:
            # The teardown drops the database and the queues: both must answer.
            await services.ensure_running()


async def _seed(stack: Stack) -> None:
    await stack.sql(
        "INSERT INTO tariff (name, currency, price_per_kwh, price_per_minute,"
        " price_per_session, vat_percent, is_default, created_at)"
        " VALUES ('standard', 'EUR', $1, $2, $3, $4, true, now())",
        *TARIFF,
    )
    for token in TOKENS:
        await stack.sql(
            "INSERT INTO id_token (token, status, owner, created_at)"
            " VALUES ($1, 'Accepted', 'driver', now())",
            token,
        )


@pytest.fixture(scope="module")
async def operator_token(fault_stack: Stack) -> str:
    """A bearer token of an operator allowed to stop sessions."""
    token = secrets.token_urlsafe(32)
    rows = await fault_stack.sql(
        "INSERT INTO operator (name, role, created_at)"
        " VALUES ('faults', 'operator', now()) RETURNING id"
    )
    await fault_stack.sql(
        "INSERT INTO api_token (operator_id, name, token_hash, created_at)"
        " VALUES ($1, 'faults', $2, now())",
        rows[0]["id"],
        hashlib.sha256(token.encode()).hexdigest(),
    )
    return token


@pytest.fixture
def fault_reports(request: pytest.FixtureRequest) -> list[Report]:
    """Where each fault's reconciliation goes, for the terminal summary."""
    return request.config.stash.setdefault(REPORTS, [])


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter,
    exitstatus: int,
    config: pytest.Config,
) -> None:
    """Print each fault's table: sent, stored, lost, duplicated."""
    reports = config.stash.get(REPORTS, [])
    if not reports:
        return
    terminalreporter.section("fault injection: sent vs stored")
    for report in reports:
        for line in report.table().splitlines():
            terminalreporter.write_line(line)
