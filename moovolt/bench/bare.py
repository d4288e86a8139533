"""The SG's baseline: a bare Temporal workflow of a session's shape.

``BareSession`` is started by an update (``start``, as the ingress starts a
``ChargeSession`` with update-with-start), waits for a ``stop`` update, runs
one activity that does nothing (the billing step's place) and completes. No
database, no bus. ``python -m moovolt.bench.bare <address> <task queue>``
runs its worker until SIGTERM; ``sessions`` drives it from the bench.
"""

import asyncio
import signal
import sys
import time
import uuid
from array import array
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.worker import Worker


@activity.defn
async def bill(session: str) -> str:
    """Do nothing: stands where the billing activity is."""
    return session


@workflow.defn
class BareSession:
    """Started, stopped, billed: nothing else."""

    def __init__(self) -> None:
        self.started = False
        self.stopped = False

    @workflow.run
    async def run(self, session: str) -> str:
        await workflow.wait_condition(lambda: self.stopped)
        return await workflow.execute_activity(
            bill, session, start_to_close_timeout=timedelta(seconds=30)
        )

    @workflow.update
    async def start(self, token: str) -> str:
        self.started = True
        return "Accepted"

    @workflow.update
    async def stop(self, meter_wh: int) -> str:
        self.stopped = True
        return "Accepted"


async def serve(address: str, task_queue: str) -> None:
    """Run the worker of ``BareSession`` until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set_result, None)
    client = await Client.connect(address)
    async with Worker(
        client, task_queue=task_queue, workflows=[BareSession], activities=[bill]
    ):
        await stop


async def sessions(
    address: str, task_queue: str, *, concurrency: int, seconds: float
) -> tuple[int, "array[float]", float]:
    """Run bare sessions in closed loops for ``seconds``.

    Returns:
        Sessions completed, the latencies of their starting updates (s), and
        the seconds the loops took.
    """
    client = await Client.connect(address)
    starts: array[float] = array("d")
    completed = 0
    loop = asyncio.get_running_loop()
    began = loop.time()
    deadline = began + seconds

    async def one_after_another() -> None:
        nonlocal completed
        while loop.time() < deadline:
            workflow_id = f"bare-{uuid.uuid4()}"
            operation: WithStartWorkflowOperation[BareSession, str] = (
                WithStartWorkflowOperation(
                    BareSession.run,
                    workflow_id,
                    id=workflow_id,
                    task_queue=task_queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                )
            )
            started = time.perf_counter()
            await client.execute_update_with_start_workflow(
                BareSession.start, "BENCH", start_workflow_operation=operation
            )
            starts.append(time.perf_counter() - started)
            handle = await operation.workflow_handle()
            await handle.execute_update(BareSession.stop, 10_000)
            await handle.result()
            completed += 1

    await asyncio.gather(*(one_after_another() for _ in range(concurrency)))
    return completed, starts, loop.time() - began


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], sys.argv[2]))
