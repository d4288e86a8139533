"""Remote start, stop and the live view through a real Temporal dev server.

A stand-in ``ChargeSession`` workflow answers the updates the way the real one
does for each outcome (accepted, refused, offline, silent charger), so these
tests pin the API's side: how it starts the workflow, calls the updates by
name and maps each answer to HTTP. The real workflow is exercised by the
stack tests.
"""

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import text
from temporalio import workflow
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from billing.tariff import price
from bus.contract import CommandOutcome, CommandResult
from moovolt.auth import Role, create_operator, issue_token
from moovolt.settings import Settings
from store.db import make_engine, make_sessionmaker
from store.models import Charger
from tests.conftest import VENV_BIN
from tests.integration.api_support import (
    api_client,
    assert_problem,
    auth,
    database_url,
)
from workflows.types import (
    CHARGE_SESSION,
    CHARGER_ID,
    ID_TOKEN,
    SESSION_STATE,
    SessionInput,
    SessionProgress,
    SessionState,
    SessionView,
    StopRequest,
)

pytestmark = pytest.mark.integration

__all__ = ["database_url"]  # a fixture

# What the stand-in charger answers, by id token.
ANSWERS = {
    "TAG-OK": (CommandOutcome.ANSWERED, "Accepted"),
    "TAG-NO": (CommandOutcome.ANSWERED, "Rejected"),
    "TAG-SILENT": (CommandOutcome.TIMEOUT, None),
}


@workflow.defn(name=CHARGE_SESSION)
class StandInSession:
    """Answers like ChargeSession; the charger is simulated by the id token."""

    def __init__(self) -> None:
        self.input: SessionInput | None = None
        self.stopped_by: str | None = None

    @workflow.run
    async def run(self, session: SessionInput) -> None:
        self.input = session
        await workflow.wait_condition(lambda: self.stopped_by is not None)

    def _result(self, outcome: CommandOutcome, status: str | None) -> CommandResult:
        assert self.input is not None
        return CommandResult(
            command_id=workflow.uuid4().hex,
            charger_id=self.input.charger_id,
            outcome=outcome,
            status=status,
            payload={"status": status} if status else {},
        )

    @workflow.update(name="remote_start_result")
    async def remote_start_result(self) -> CommandResult:
        await workflow.wait_condition(lambda: self.input is not None)
        assert self.input is not None
        if self.input.id_token == "TAG-OFFLINE":
            raise ApplicationError("no gateway holds it", type="ChargerOffline")
        if self.input.id_token == "TAG-LOST":
            raise ApplicationError("no answer", type="CommandTimeout")
        return self._result(*ANSWERS[self.input.id_token])

    @workflow.update(name="request_stop")
    async def request_stop(self, request: StopRequest) -> CommandResult:
        self.stopped_by = request.requested_by
        return self._result(CommandOutcome.ANSWERED, "Accepted")

    @workflow.query(name="view")
    def view(self) -> SessionView:
        assert self.input is not None
        energy = Decimal(1500)
        return SessionView(
            progress=SessionProgress(state=SessionState.CHARGING),
            energy_wh=energy,
            cost=price(self.input.tariff, energy, 600),
        )


@pytest.fixture(scope="module")
async def temporal() -> AsyncIterator[WorkflowEnvironment]:
    async with await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(VENV_BIN / "temporal"),
        data_converter=pydantic_data_converter,
        search_attributes=(CHARGER_ID, ID_TOKEN, SESSION_STATE),
    ) as env:
        yield env


@pytest.fixture(scope="module")
async def settings(database_url: str, temporal: WorkflowEnvironment) -> Settings:
    return Settings(
        database_url=database_url,
        temporal_address=temporal.client.service_client.config.target_host,
        temporal_task_queue=f"api-test-{uuid.uuid4().hex[:8]}",
        call_timeout_s=5,
    )


@pytest.fixture(scope="module")
async def token(settings: Settings) -> str:
    engine = make_engine(settings.database_url, pool_size=1)
    async with make_sessionmaker(engine)() as db:
        db.add(Charger(id="cp-1", connected=True))
        await db.commit()
        operator = await create_operator(db, "op", Role.OPERATOR)
        issued = await issue_token(db, operator)
    await engine.dispose()
    return issued


@pytest.fixture(scope="module")
async def client(
    settings: Settings, temporal: WorkflowEnvironment, token: str
) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        Worker(
            temporal.client,
            task_queue=settings.temporal_task_queue,
            workflows=[StandInSession],
            workflow_runner=UnsandboxedWorkflowRunner(),
        ),
        api_client(settings) as http,
    ):
        yield http


async def remote_start(
    client: httpx.AsyncClient, token: str, id_token: str
) -> httpx.Response:
    return await client.post(
        "/api/v1/chargers/cp-1/remote-start",
        json={"connector_id": 1, "id_token": id_token},
        headers=auth(token),
    )


async def test_accepted_remote_start_then_view_and_stop(
    client: httpx.AsyncClient,
    token: str,
    settings: Settings,
    temporal: WorkflowEnvironment,
) -> None:
    response = await remote_start(client, token, "TAG-OK")
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["outcome"], body["status"]) == ("answered", "Accepted")
    session_id = body["session_id"]
    assert body["workflow_id"] == f"session-cp-1-{session_id}"
    assert response.headers["location"] == f"/api/v1/sessions/{session_id}"

    described = await temporal.client.get_workflow_handle(
        body["workflow_id"]
    ).describe()
    attributes = described.typed_search_attributes
    assert attributes.get(CHARGER_ID) == "cp-1"
    assert attributes.get(ID_TOKEN) == "TAG-OK"
    assert attributes.get(SESSION_STATE) == "RemoteStartRequested"

    detail = (
        await client.get(f"/api/v1/sessions/{session_id}", headers=auth(token))
    ).json()
    assert detail["live"]["energy_wh"] == "1500"
    assert detail["live"]["progress"]["state"] == "Charging"

    # The session row follows the workflow; here we play the charger's start.
    await _set_state(settings, session_id, SessionState.CHARGING)
    stopped = await client.post(
        f"/api/v1/sessions/{session_id}/stop", headers=auth(token)
    )
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["status"] == "Accepted"
    handle = temporal.client.get_workflow_handle(body["workflow_id"])
    await handle.result(rpc_timeout=timedelta(seconds=10))


async def test_refused_remote_start_is_409_with_the_answer(
    client: httpx.AsyncClient, token: str
) -> None:
    body = assert_problem(await remote_start(client, token, "TAG-NO"), 409)
    assert body["title"] == "rejected by charger"
    answer = body["answer"]
    assert (answer["outcome"], answer["status"]) == ("answered", "Rejected")
    assert answer["payload"] == {"status": "Rejected"}
    assert body["session_id"]


async def test_offline_charger_is_409(client: httpx.AsyncClient, token: str) -> None:
    body = assert_problem(await remote_start(client, token, "TAG-OFFLINE"), 409)
    assert body["title"] == "charger offline"
    assert body["workflow_id"].startswith("session-cp-1-")


async def test_silent_charger_is_504(client: httpx.AsyncClient, token: str) -> None:
    body = assert_problem(await remote_start(client, token, "TAG-SILENT"), 504)
    assert body["answer"]["outcome"] == "timeout"

    lost = assert_problem(await remote_start(client, token, "TAG-LOST"), 504)
    assert lost["title"] == "charger did not answer"


async def _set_state(settings: Settings, session_id: int, state: SessionState) -> None:
    engine = make_engine(settings.database_url, pool_size=1)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE session SET state = :state WHERE id = :id"),
            {"state": state.value, "id": session_id},
        )
    await engine.dispose()
