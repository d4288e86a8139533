"""The bench's table: each figure beside its baseline and its target.

Printed as a Markdown table, so that the run's output goes into
``docs/performance.md`` as it is.
"""

import math
from dataclasses import dataclass

from moovolt.bench.runner import Results

KIB_TARGET = 32.0
FRACTION_TARGET = 0.5
P99_TARGET_MS = 100.0
CONNECTIONS_TARGET = 10_000


@dataclass(frozen=True)
class Row:
    """One line of the table.

    Attributes:
        figure: what is measured.
        chargers: how many chargers were connected.
        value: moov.olt's figure, formatted.
        baseline: the baseline's figure, formatted, and what it is.
        ratio: the figure against its baseline, formatted ("" if none).
        target: the target, formatted ("" if none).
        met: whether the target is met (None: no target at this size).
        numbers: the raw figures: value, baseline.
    """

    figure: str
    chargers: int
    value: str
    baseline: str
    ratio: str
    target: str
    met: bool | None
    numbers: tuple[float, float]


def _num(value: float, digits: int = 0) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:,.{digits}f}"


def _pair(pair: tuple[float, float]) -> str:
    return f"{_num(pair[0], 1)} / {_num(pair[1], 1)}"


def rows(results: Results) -> list[Row]:
    """Return the table's rows, the chargers' sizes in order for each figure."""
    out: list[Row] = []
    base = results.baselines
    for n in results.chargers:
        gateway, echo = results.gateway.get(n), results.echo.get(n)
        if gateway is not None and echo is not None:
            at_scale = n >= CONNECTIONS_TARGET
            out.append(
                Row(
                    "idle sockets held by one process",
                    n,
                    _num(gateway.held),
                    f"{_num(echo.held)} (raw websockets)",
                    f"{gateway.held / n:.0%}",
                    "all of them; 10,000",
                    gateway.held == n if not at_scale else gateway.held >= n,
                    (gateway.held, echo.held),
                )
            )
            out.append(
                Row(
                    "memory per idle socket (KiB)",
                    n,
                    _num(gateway.kib_per_socket, 1),
                    f"{_num(echo.kib_per_socket, 1)} (raw websockets)",
                    f"{gateway.kib_per_socket / echo.kib_per_socket:.1f}x",
                    f"< {KIB_TARGET:.0f}",
                    gateway.kib_per_socket < KIB_TARGET,
                    (gateway.kib_per_socket, echo.kib_per_socket),
                )
            )
            for name, ours in (
                ("heartbeats per CPU-second", "heartbeats_per_cpu_s"),
                ("heartbeats/s (wall clock)", "heartbeats_per_s"),
                ("meter values per CPU-second", "meters_per_cpu_s"),
                ("meter values/s (wall clock)", "meters_per_s"),
            ):
                value, baseline = getattr(gateway, ours), getattr(echo, ours)
                fraction = value / baseline if baseline else math.nan
                per_cpu = "CPU" in name
                out.append(
                    Row(
                        name,
                        n,
                        _num(value),
                        f"{_num(baseline)} (raw websockets echo)",
                        f"{fraction:.1%}",
                        f">= {FRACTION_TARGET:.0%} of raw" if per_cpu else "",
                        fraction >= FRACTION_TARGET if per_cpu else None,
                        (value, baseline),
                    )
                )
        session = results.sessions.get(n)
        if session is not None and base is not None:
            for name, mine, theirs, what in (
                (
                    "Authorize p50 / p99 (ms)",
                    session.authorize_ms,
                    base.rpc_ms,
                    "raw aio-pika RPC",
                ),
                (
                    "start p50 / p99 (ms)",
                    session.start_ms,
                    base.bare_start_ms,
                    "bare Temporal update-with-start",
                ),
            ):
                out.append(
                    Row(
                        name,
                        n,
                        _pair(mine),
                        f"{_pair(theirs)} ({what})",
                        f"{mine[1] / theirs[1]:.1f}x" if theirs[1] else "",
                        f"p99 < {P99_TARGET_MS:.0f} at 1,000",
                        mine[1] < P99_TARGET_MS if n == 1000 else None,
                        (mine[1], theirs[1]),
                    )
                )
            report = session.report
            out.append(
                Row(
                    "chargers connected and booted/s",
                    n,
                    _num(session.booted_per_s, 1),
                    "",
                    "",
                    "",
                    None,
                    (session.booted_per_s, math.nan),
                )
            )
            out.append(
                Row(
                    "billed sessions/s (offered)",
                    n,
                    f"{_num(session.billed_per_s, 1)} "
                    f"({_num(session.offered_per_s, 1)})",
                    f"{_num(base.bare_sessions_per_s, 1)} (bare Temporal workflow)",
                    f"{session.billed_per_s / base.bare_sessions_per_s:.0%}"
                    if base.bare_sessions_per_s
                    else "",
                    "",
                    None,
                    (session.billed_per_s, base.bare_sessions_per_s),
                )
            )
            out.append(
                Row(
                    "sessions completed / CDRs",
                    n,
                    f"{report.sessions_completed} / {session.billed}",
                    "",
                    "",
                    "equal",
                    report.sessions_completed == session.billed,
                    (report.sessions_completed, session.billed),
                )
            )
    return out


def format_table(results: Results) -> str:
    """Return the run as text: the machine, then the Markdown table."""
    ordered = sorted(rows(results), key=lambda row: _order(row.figure))
    lines = [
        f"moovolt bench{' --quick' if results.quick else ''}: "
        f"{results.elapsed_s:.0f} s",
        f"machine: {results.machine_before.describe()} (at the start)",
    ]
    if results.machine_after is not None:
        lines.append(f"load average at the end: {results.machine_after.load}")
    lines += [
        "",
        "| figure | chargers | moov.olt | baseline | ratio | target | met |",
        "|---|---:|---:|---|---:|---|---|",
    ]
    for row in ordered:
        met = {True: "yes", False: "**no**", None: ""}[row.met]
        lines.append(
            f"| {row.figure} | {row.chargers:,} | {row.value} | {row.baseline} "
            f"| {row.ratio} | {row.target} | {met} |"
        )
    return "\n".join(lines)


FIGURES = (
    "idle sockets held by one process",
    "memory per idle socket (KiB)",
    "heartbeats per CPU-second",
    "heartbeats/s (wall clock)",
    "meter values per CPU-second",
    "meter values/s (wall clock)",
    "chargers connected and booted/s",
    "Authorize p50 / p99 (ms)",
    "start p50 / p99 (ms)",
    "billed sessions/s (offered)",
    "sessions completed / CDRs",
)


def _order(figure: str) -> int:
    return FIGURES.index(figure)
