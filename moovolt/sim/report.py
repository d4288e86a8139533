"""What a simulation sent and what came back: counts, outcomes, latencies.

One ``Report`` is shared by every simulated charger of a run (one event
loop, so no locking). Latencies are kept whole, per action, as seconds in
compact arrays, so percentiles are exact.
"""

import math
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

RESULT = "result"  # a CALLRESULT
TIMEOUT = "timeout"  # no answer in time
CLOSED = "closed"  # the socket closed before the answer


def percentile(values: "array[float] | list[float]", fraction: float) -> float:
    """Return the ``fraction`` percentile of ``values`` (nearest rank).

    Args:
        values: the samples, in any order.
        fraction: 0.5 for the median, 0.99 for p99.

    Returns:
        The sample at that rank, or NaN if there are none.
    """
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Report:
    """Counters of one simulation run.

    Attributes:
        sent: calls sent, by action.
        answers: answers received, by ``(action, outcome)``; the outcome is
            ``result``, a CALLERROR code, ``timeout`` or ``closed``.
        latencies: seconds from sending a call to its answer, by action
            (CALLRESULTs and CALLERRORs alike).
        connects: sockets opened; ``reconnects`` of them after a close.
        connect_failures: handshakes refused or failed, by reason.
        boots: BootNotification answers by status.
        sessions_started: transactions the CSMS answered at their start.
        sessions_completed: transactions whose stop got a CALLRESULT.
        sessions_refused: sessions whose token was not Accepted.
        samples_stored: sampled values in calls answered with a CALLRESULT.
        csms_calls: calls the CSMS sent the chargers, by action.
        transactions: ``(charger id, transaction id)`` of every started one.
        completed: ``(charger id, transaction id)`` of every completed one.
    """

    sent: Counter[str] = field(default_factory=Counter)
    answers: Counter[tuple[str, str]] = field(default_factory=Counter)
    latencies: dict[str, "array[float]"] = field(default_factory=dict)
    connects: int = 0
    reconnects: int = 0
    connect_failures: Counter[str] = field(default_factory=Counter)
    boots: Counter[str] = field(default_factory=Counter)
    sessions_started: int = 0
    sessions_completed: int = 0
    sessions_refused: int = 0
    samples_stored: int = 0
    csms_calls: Counter[str] = field(default_factory=Counter)
    transactions: set[tuple[str, str]] = field(default_factory=set)
    completed: set[tuple[str, str]] = field(default_factory=set)
    elapsed_s: float = 0.0

    def record(self, action: str, outcome: str, latency_s: float | None) -> None:
        """Count one answer (or its absence) to a call of ``action``."""
        self.answers[action, outcome] += 1
        if latency_s is not None:
            found = self.latencies.get(action)
            if found is None:
                found = self.latencies[action] = array("d")
            found.append(latency_s)

    @property
    def call_errors(self) -> Counter[str]:
        """CALLERRORs received, by code."""
        errors: Counter[str] = Counter()
        for (_, outcome), count in self.answers.items():
            if outcome not in (RESULT, TIMEOUT, CLOSED):
                errors[outcome] += count
        return errors

    def answered(self, action: str, outcome: str = RESULT) -> int:
        """Return how many calls of ``action`` got ``outcome``."""
        return self.answers[action, outcome]

    def latency_ms(self, action: str, fraction: float) -> float:
        """Return a latency percentile of ``action``'s calls, in milliseconds."""
        return percentile(self.latencies.get(action, array("d")), fraction) * 1000

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain data (for ``--json``)."""
        outcomes: dict[str, dict[str, int]] = {}
        for (action, outcome), count in sorted(self.answers.items()):
            outcomes.setdefault(action, {})[outcome] = count
        return {
            "elapsed_s": round(self.elapsed_s, 3),
            "sent": dict(sorted(self.sent.items())),
            "answers": outcomes,
            "call_errors": dict(self.call_errors),
            "latency_ms": {
                action: {
                    "p50": _round(self.latency_ms(action, 0.5)),
                    "p90": _round(self.latency_ms(action, 0.9)),
                    "p99": _round(self.latency_ms(action, 0.99)),
                    "max": _round(self.latency_ms(action, 1.0)),
                }
                for action in sorted(self.latencies)
            },
            "connects": self.connects,
            "reconnects": self.reconnects,
            "connect_failures": dict(self.connect_failures),
            "boots": dict(self.boots),
            "sessions_started": self.sessions_started,
            "sessions_completed": self.sessions_completed,
            "sessions_refused": self.sessions_refused,
            "samples_stored": self.samples_stored,
            "csms_calls": dict(self.csms_calls),
        }

    def format(self) -> str:
        """Return the report as the text ``moovolt simulate`` prints."""
        lines = [
            f"simulation: {self.elapsed_s:.1f} s, {self.connects} connects "
            f"({self.reconnects} reconnects), "
            f"{sum(self.connect_failures.values())} failed",
            f"sessions: {self.sessions_started} started, "
            f"{self.sessions_completed} completed, "
            f"{self.sessions_refused} refused at authorize; "
            f"{self.samples_stored} meter samples stored",
            "",
            f"{'action':<26} {'sent':>8} {'result':>8} {'error':>7} "
            f"{'no answer':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
            f"{'max ms':>8}",
        ]
        for action in sorted(self.sent):
            lost = self.answered(action, TIMEOUT) + self.answered(action, CLOSED)
            errors = sum(
                count
                for (name, outcome), count in self.answers.items()
                if name == action and outcome not in (RESULT, TIMEOUT, CLOSED)
            )
            lines.append(
                f"{action:<26} {self.sent[action]:>8} "
                f"{self.answered(action):>8} {errors:>7} {lost:>9} "
                f"{self.latency_ms(action, 0.5):>8.1f} "
                f"{self.latency_ms(action, 0.9):>8.1f} "
                f"{self.latency_ms(action, 0.99):>8.1f} "
                f"{self.latency_ms(action, 1.0):>8.1f}"
            )
        call_errors = self.call_errors
        if call_errors:
            lines.append("")
            lines.append(
                "CALLERRORs: "
                + ", ".join(f"{c} {n}" for c, n in call_errors.most_common())
            )
        if self.connect_failures:
            lines.append(
                "connect failures: "
                + ", ".join(
                    f"{why} {count}" for why, count in self.connect_failures.items()
                )
            )
        if self.boots:
            lines.append(
                "boots: " + ", ".join(f"{s} {c}" for s, c in self.boots.items())
            )
        if self.csms_calls:
            lines.append(
                "calls from the CSMS: "
                + ", ".join(f"{a} {c}" for a, c in self.csms_calls.items())
            )
        return "\n".join(lines)


def _round(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 2)
