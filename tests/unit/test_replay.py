"""Replay recorded ChargeSession histories against today's workflow code.

A failure here means a change to ``workflows/`` would break sessions that
are running in production. Record new histories with
``MOOVOLT_RECORD_HISTORIES=1 pytest tests/unit/test_session_workflow.py``.
"""

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.session import ChargeSession

HISTORIES = Path(__file__).resolve().parents[1] / "histories"
RECORDED = {path.stem: path.read_text() for path in sorted(HISTORIES.glob("*.json"))}


def test_histories_are_recorded() -> None:
    assert len(RECORDED) >= 2, f"expected recorded histories in {HISTORIES}"


@pytest.mark.parametrize("name", sorted(RECORDED))
async def test_replay(name: str) -> None:
    history = WorkflowHistory.from_json(name, json.loads(RECORDED[name]))

    replayer = Replayer(
        workflows=[ChargeSession], data_converter=pydantic_data_converter
    )
    await replayer.replay_workflow(history)
