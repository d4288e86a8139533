"""What each fault-suite charger sent and what the CSMS answered.

A charger keeps its own books, independent of the CSMS: every transaction it
started, every meter sample it sent that the CSMS stores as a meter value,
the registers its energy is billed from, and how its calls fared on the wire.
The reconciliation compares these books with PostgreSQL.
"""

import asyncio
from dataclasses import dataclass, field
from datetime import datetime

PERIODIC = "Sample.Periodic"
BEGIN = "Transaction.Begin"
END = "Transaction.End"


@dataclass(frozen=True)
class Sample:
    """One energy register reading the charger sent as a meter value."""

    at: datetime
    wh: int
    context: str


@dataclass
class Transaction:
    """One transaction as the charger saw it.

    ``transaction_id`` is the CSMS's answer to a 1.6 StartTransaction (None
    until it comes) or the 2.0.1 charger's own id. ``samples`` are those the
    CSMS stores as meter values: 1.6 MeterValues, every register of a 2.0.1
    TransactionEvent.
    """

    number: int
    id_token: str
    connector_id: int
    started_at: datetime
    meter_start_wh: int
    transaction_id: str | None = None
    samples: list[Sample] = field(default_factory=list)
    meter_stop_wh: int | None = None
    stopped_at: datetime | None = None
    stop_reason: str | None = None
    verdict: str | None = None
    ended_answered: bool = False
    # The gateway the charger was connected to when a remote stop came.
    remote_stop_gateway: str | None = None
    stop_requested: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def energy_wh(self) -> int:
        """The energy between the first and the last register sent."""
        if self.meter_stop_wh is None:
            return 0  # the charger was stopped mid-session
        return self.meter_stop_wh - self.meter_start_wh


@dataclass
class Ledger:
    """One charger's books.

    ``sent`` counts distinct calls (a resend is the same call), ``attempts``
    the frames put on the wire for them; ``answered`` the calls that got a
    CALLRESULT. Authorize calls are counted apart: a charger that cannot ask
    starts from its authorization cache instead.
    """

    charger_id: str
    version: str
    transactions: list[Transaction] = field(default_factory=list)
    sent: int = 0
    answered: int = 0
    attempts: int = 0
    timeouts: int = 0
    call_errors: int = 0
    cut_off: int = 0  # calls whose socket closed before the answer
    authorized_online: int = 0
    authorized_from_cache: int = 0
    connections: list[str] = field(default_factory=list)
    refused_connects: int = 0
    backlog_max: int = 0  # the most calls queued at once

    @property
    def gateway(self) -> str | None:
        """The gateway of the newest connection."""
        return self.connections[-1] if self.connections else None
