"""``moovolt bench --quick``: it runs, prints every figure beside its baseline.

The figures are checked for sense (counts that add up, positive finite
rates, ordered percentiles), never for speed: speed is the bench's own
business, measured on a quiet machine, not in a test. The gateway's
throughput rests on its compiled schema validation; the last test holds it
to the ``ocpp`` library's verdicts, payload by payload.
"""

import copy
import json
import math
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from ocpp.exceptions import OCPPError
from ocpp.messages import Call, CallResult, MessageType
from ocpp.messages import validate_payload as library_validate_payload

from moovolt.bench.table import FIGURES
from moovolt.sim.payloads import FLAVOURS, Transaction
from spr_gateway.framing import validate_payload, validation_text
from tests.conftest import ROOT

CHARGERS = 10
RUN_TIMEOUT_S = 240
# Counts with nothing to compare them with.
NO_BASELINE = {"sessions completed / CDRs", "chargers connected and booted/s"}


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
def test_the_quick_bench_prints_every_figure_beside_its_baseline(
    tmp_path: Path,
) -> None:
    figures = tmp_path / "bench.json"
    plot = tmp_path / "bench.svg"

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "moovolt.cli",
            "bench",
            "--quick",
            "--chargers",
            str(CHARGERS),
            "--json",
            str(figures),
            "--svg",
            str(plot),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    table = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| figure | chargers | moov.olt | baseline |")
    rows = {line.split(" | ")[0].removeprefix("| "): line for line in table[1:]}
    assert set(rows) == set(FIGURES)
    for figure, line in rows.items():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert cells[1] == str(CHARGERS), line
        assert cells[2] and "n/a" not in cells[2], line
        if figure not in NO_BASELINE:
            assert cells[3] and "n/a" not in cells[3], line  # the baseline

    data = json.loads(figures.read_text())
    size = str(CHARGERS)
    for server in ("gateway", "raw_websockets"):
        sockets = data[server][size]
        assert sockets["held"] == CHARGERS and sockets["failed"] == 0
        assert 0 < sockets["kib_per_socket"] < 1024
        for rate in (
            "heartbeats_per_s",
            "heartbeats_per_cpu_s",
            "meters_per_s",
            "meters_per_cpu_s",
        ):
            assert _positive(sockets[rate]), (server, rate)
        assert sockets["errors"] == 0

    sessions = data["sessions"][size]
    report = sessions["report"]
    assert report["boots"]["Accepted"] == CHARGERS
    assert report["call_errors"] == {}
    assert report["sessions_completed"] == sessions["billed"] > 0
    assert report["sessions_started"] >= report["sessions_completed"]
    for name in ("authorize_ms", "start_ms"):
        p50, p99 = sessions[name]
        assert _positive(p50) and p50 <= p99, name
    assert _positive(sessions["offered_per_s"])
    assert _positive(sessions["booted_per_s"])
    assert sessions["billed_per_s"] >= 0

    baselines = data["baselines"]
    for name in ("rpc_ms", "bare_start_ms"):
        p50, p99 = baselines[name]
        assert _positive(p50) and p50 <= p99, name
    assert _positive(baselines["bare_sessions_per_s"])

    svg = plot.read_text()
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")


# -- The validation path the throughput figures rest on ------------------------

VALUES: list[Any] = [True, 0, -1, 1.0, 1.5, 10**30, "", "x" * 600, None, [], {}]
RESPONSES: dict[tuple[str, str], dict[str, Any]] = {
    ("1.6", "Heartbeat"): {"currentTime": "2026-01-01T00:00:00Z"},
    ("1.6", "StartTransaction"): {"transactionId": 3, "idTagInfo": {"status": "A"}},
    ("2.0.1", "TransactionEvent"): {"totalCost": 1.5, "idTokenInfo": {"status": "A"}},
}


def _calls() -> list[tuple[str, Call | CallResult]]:
    """Calls of both versions, and every leaf of each replaced or removed."""
    payloads: list[tuple[str, str, dict[str, Any], int]] = []
    for flavour in FLAVOURS.values():
        tx = Transaction(connector_id=1, id_token="TAG-1", meter_wh=1000)
        flavour.open(tx)
        tx.transaction_id = tx.transaction_id or "5"
        for action, payload in (
            flavour.boot("SN-1"),
            flavour.heartbeat(),
            flavour.status(1, "Available"),
            flavour.authorize("TAG-1"),
            flavour.start(tx),
            flavour.meter(tx),
            flavour.stop(tx),
        ):
            payloads.append((flavour.version, action, payload, MessageType.Call))
    for (version, action), response in RESPONSES.items():
        payloads.append((version, action, response, MessageType.CallResult))

    calls: list[tuple[str, Call | CallResult]] = []
    for version, action, payload, kind in payloads:
        variants = [payload, {**payload, "colour": "red"}]
        for path in _paths(payload):
            variants += [_replaced(payload, path, value) for value in VALUES]
            if isinstance(path[-1], str):
                variants.append(_replaced(payload, path, None, remove=True))
        for variant in variants:
            message: Call | CallResult = (
                Call("m-1", action, variant)
                if kind == MessageType.Call
                else CallResult("m-1", variant, action)
            )
            calls.append((version, message))
    return calls


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path] if path else []
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, child in items:
        found += _paths(child, (*path, key))
    return found


def _replaced(
    payload: dict[str, Any], path: tuple[Any, ...], value: Any, remove: bool = False
) -> dict[str, Any]:
    copied = copy.deepcopy(payload)
    parent = copied
    for key in path[:-1]:
        parent = parent[key]
    if remove:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return copied


async def _verdict(
    validate: Callable[[Call | CallResult, str], Awaitable[None]],
    message: Call | CallResult,
    version: str,
) -> tuple[str, str, str] | None:
    try:
        await validate(copy.deepcopy(message), version)
    except OCPPError as exc:
        return type(exc).__name__, exc.code, validation_text(exc)
    return None


async def test_the_fast_validation_accepts_and_refuses_as_the_library_does() -> None:
    calls = _calls()
    refused = 0
    for version, message in calls:
        ours = await _verdict(validate_payload, message, version)
        theirs = await _verdict(library_validate_payload, message, version)
        assert ours == theirs, (version, message)
        refused += ours is not None
    assert 0 < refused < len(calls)
