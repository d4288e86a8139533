"""What one charger may send: a budget of frames per second, and of garbage.

Every frame a charger sends on its own (its CALLs, unreadable frames, answers
to no call in flight) spends a token of a bucket that holds ``burst`` tokens
and refills at ``rate_per_s``. A CALL that finds a part of a token waits
for the rest before it is handled, so a charger that waits for each answer,
as OCPP asks, is slowed down to the rate and never refused. A frame that
finds the bucket empty is refused: a CALL gets a CALLERROR at once and
reaches nothing further, and nothing refused is logged, so that a flood
floods neither the SG nor the log. The first refusal starts a flood, which
ends once the charger has stayed under its rate long enough to fill the
bucket again; a charger still refused ``flood_close_s`` after its flood
started is closed.

Unreadable frames are also counted in a row: a charger that sends nothing
else has lost track of the protocol and is closed after ``max_unreadable``.

Nothing here touches the network or the clock: callers pass the time.
"""

from dataclasses import dataclass
from enum import Enum

from moovolt.settings import Settings


@dataclass(frozen=True, slots=True)
class Limits:
    """One charger's limits.

    Attributes:
        rate_per_s: frames per second a charger may send, on average.
        burst: frames it may send at once, above the average.
        flood_close_s: how long a flood may last before its socket closes.
        max_unreadable: unreadable frames in a row that close its socket.
    """

    rate_per_s: float
    burst: int
    flood_close_s: float
    max_unreadable: int

    @classmethod
    def from_settings(cls, settings: Settings) -> "Limits":
        """Return the limits that ``settings`` configure.

        Args:
            settings: the gateway's settings (``MOOVOLT_GATEWAY_RATE_*`` ...).

        Returns:
            The limits of every charger this gateway serves.
        """
        return cls(
            rate_per_s=settings.gateway_rate_per_s,
            burst=settings.gateway_rate_burst,
            flood_close_s=settings.gateway_flood_close_s,
            max_unreadable=settings.gateway_max_unreadable_frames,
        )


class Verdict(Enum):
    """What becomes of one frame."""

    ADMIT = "admit"  # handle it, after ``Ticket.wait_s``
    REFUSE = "refuse"  # over the rate: answer at once, relay and log nothing
    FLOOD = "flood"  # refused, and the first refusal of a flood
    CLOSE = "close"  # refused, and the flood has lasted too long


@dataclass(frozen=True, slots=True)
class Ticket:
    """The verdict on one frame.

    Attributes:
        verdict: what becomes of the frame.
        wait_s: for an admitted frame, how long it waits for its token.
    """

    verdict: Verdict
    wait_s: float = 0.0


class FrameBudget:
    """The token bucket of one charger's frames, and its flood.

    Args:
        limits: the charger's limits.
        now: the current monotonic time, in seconds.
    """

    def __init__(self, limits: Limits, now: float) -> None:
        self.limits = limits
        self._tokens = float(limits.burst)
        self._stamp = now
        self._flood_started: float | None = None
        self._refused = 0

    @property
    def refused(self) -> int:
        """Frames refused since the current flood started, 0 outside one."""
        return self._refused

    def flood_s(self, now: float) -> float:
        """Return how long the current flood has lasted, 0.0 outside one."""
        if self._flood_started is None:
            return 0.0
        return now - self._flood_started

    def take(self, now: float) -> Ticket:
        """Spend a token on a frame that arrives at ``now``.

        Args:
            now: the frame's arrival, in the clock of the constructor's ``now``.

        Returns:
            The frame's ticket.
        """
        self._refill(now)
        if self._tokens > 0.0:
            # Only one frame at a time may wait: the next finds no token.
            self._tokens -= 1.0
            return Ticket(
                Verdict.ADMIT, max(0.0, -self._tokens) / self.limits.rate_per_s
            )

        self._refused += 1
        if self._flood_started is None:
            self._flood_started = now
            return Ticket(Verdict.FLOOD)
        if now - self._flood_started >= self.limits.flood_close_s:
            return Ticket(Verdict.CLOSE)
        return Ticket(Verdict.REFUSE)

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._stamp)
        self._stamp = max(self._stamp, now)
        self._tokens = min(
            float(self.limits.burst), self._tokens + elapsed * self.limits.rate_per_s
        )
        if self._tokens >= self.limits.burst:
            self._flood_started = None
            self._refused = 0


class UnreadableRun:
    """Count a charger's unreadable frames in a row.

    Args:
        limit: the count that closes the charger's socket.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0

    def strike(self) -> bool:
        """Count one unreadable frame; return whether the run reached the limit."""
        self.count += 1
        return self.count >= self.limit

    def clear(self) -> None:
        """End the run: a readable frame came."""
        self.count = 0
