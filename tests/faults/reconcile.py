"""Compare what the chargers sent with what PostgreSQL holds.

For one fault: every transaction a charger started must be one session,
billed, with one CDR whose energy is the last register sent minus the first,
and one payment of the CDR's total; every meter sample sent must be one
``meter_value`` row of its transaction, with its value. Anything missing is
lost, anything more is duplicated.
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from tests.faults.ledger import Ledger
from tests.integration.stack import Stack

ENERGY = "Energy.Active.Import.Register"
BILLED = "Billed"
# Problems listed in a report at most; the counts hold them all.
SHOWN_PROBLEMS = 12


@dataclass(frozen=True)
class Line:
    """Sent versus stored for one kind of record."""

    what: str
    sent: int
    stored: int
    lost: int
    duplicated: int


@dataclass
class Report:
    """The reconciliation of one fault."""

    fault: str
    lines: list[Line] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    traffic: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems and all(
            line.lost == 0 and line.duplicated == 0 for line in self.lines
        )

    def table(self) -> str:
        """Return the report as a text table, problems after it."""
        rows = [f"fault: {self.fault} -> {'OK' if self.ok else 'FAILED'}"]
        rows.append(f"  {'':<16}{'sent':>10}{'stored':>10}{'lost':>8}{'dup':>8}")
        for line in self.lines:
            rows.append(
                f"  {line.what:<16}{line.sent:>10}{line.stored:>10}"
                f"{line.lost:>8}{line.duplicated:>8}"
            )
        if self.traffic:
            rows.append(f"  {self.traffic}")
        rows += [f"  {note}" for note in self.notes]
        shown = self.problems[:SHOWN_PROBLEMS]
        rows += [f"  ! {problem}" for problem in shown]
        if len(self.problems) > len(shown):
            rows.append(f"  ! ... and {len(self.problems) - len(shown)} more")
        return "\n".join(rows)


# (charger, transaction, sampled at, context) -> register value in Wh
SampleKey = tuple[str, str, datetime, str]


async def reconcile(stack: Stack, fault: str, ledgers: list[Ledger]) -> Report:
    """Compare ``ledgers`` with the stack's database."""
    chargers = [ledger.charger_id for ledger in ledgers]
    report = Report(fault, traffic=_traffic(ledgers))
    sessions = await stack.sql(
        "SELECT id, charger_id, transaction_id, state FROM session"
        " WHERE charger_id = ANY($1)",
        chargers,
    )
    by_tx = {(r["charger_id"], r["transaction_id"]): r for r in sessions}
    sent = [(ledger.charger_id, tx) for ledger in ledgers for tx in ledger.transactions]

    matched: dict[int, Any] = {}
    lost_sessions = 0
    for charger_id, tx in sent:
        row = by_tx.get((charger_id, tx.transaction_id))
        if row is None:
            lost_sessions += 1
            report.problems.append(
                f"{charger_id} transaction {tx.number} ({tx.transaction_id}):"
                " no session"
            )
            continue
        matched[row["id"]] = tx
        if row["state"] != BILLED:
            report.problems.append(
                f"session {row['id']} of {charger_id} is {row['state']}, not Billed"
            )
        if tx.verdict != "Accepted":
            report.problems.append(
                f"{charger_id} transaction {tx.transaction_id}: start {tx.verdict}"
            )
    report.lines.append(
        Line(
            "sessions",
            len(sent),
            len(sessions),
            lost_sessions,
            len(sessions) - len(matched),
        )
    )

    report.lines.append(await _meter_values(stack, chargers, ledgers, report))
    await _billing(stack, chargers, matched, report)
    await _unmatched_stops(stack, chargers, report)
    return report


async def _meter_values(
    stack: Stack, chargers: list[str], ledgers: list[Ledger], report: Report
) -> Line:
    sent: dict[SampleKey, Decimal] = {}
    for ledger in ledgers:
        for tx in ledger.transactions:
            for sample in tx.samples:
                key = (
                    ledger.charger_id,
                    str(tx.transaction_id),
                    sample.at,
                    sample.context,
                )
                sent[key] = Decimal(sample.wh)

    rows = await stack.sql(
        "SELECT charger_id, transaction_id, sampled_at, context, value"
        " FROM meter_value WHERE charger_id = ANY($1) AND measurand = $2",
        chargers,
        ENERGY,
    )
    stored = Counter(
        (r["charger_id"], r["transaction_id"], r["sampled_at"], r["context"])
        for r in rows
    )
    values = {
        (r["charger_id"], r["transaction_id"], r["sampled_at"], r["context"]): r[
            "value"
        ]
        for r in rows
    }

    lost = 0
    for key, wh in sent.items():
        if key not in stored:
            lost += 1
            report.problems.append(f"meter value lost: {_key(key)} {wh} Wh")
        elif values[key] != wh:
            lost += 1
            report.problems.append(
                f"meter value {_key(key)}: sent {wh} Wh, stored {values[key]} Wh"
            )
    duplicated = 0
    for key, count in stored.items():
        extra = count - 1 if key in sent else count
        if extra:
            duplicated += extra
            report.problems.append(f"meter value not sent once: {_key(key)} x{count}")
    return Line("meter values", len(sent), len(rows), lost, duplicated)


async def _billing(
    stack: Stack, chargers: list[str], matched: dict[int, Any], report: Report
) -> None:
    cdrs = await stack.sql(
        "SELECT id, session_id, energy_wh, total_incl_vat FROM cdr"
        " WHERE charger_id = ANY($1)",
        chargers,
    )
    payments = await stack.sql(
        "SELECT p.cdr_id, p.amount FROM payment p JOIN cdr c ON c.id = p.cdr_id"
        " WHERE c.charger_id = ANY($1)",
        chargers,
    )
    cdr_of: dict[int, list[Any]] = {}
    for cdr in cdrs:
        cdr_of.setdefault(cdr["session_id"], []).append(cdr)
    paid: dict[str, list[Decimal]] = {}
    for payment in payments:
        paid.setdefault(payment["cdr_id"], []).append(payment["amount"])

    energy_sent = energy_stored = energy_lost = energy_extra = 0
    cdrs_lost = cdrs_extra = payments_lost = payments_extra = 0
    for session_id, tx in matched.items():
        energy_sent += tx.energy_wh
        found = cdr_of.get(session_id, [])
        if not found:
            cdrs_lost += 1
            report.problems.append(f"session {session_id}: no CDR")
            energy_lost += tx.energy_wh
            continue
        cdrs_extra += len(found) - 1
        cdr = found[0]
        billed = int(cdr["energy_wh"])
        energy_stored += billed
        energy_lost += max(tx.energy_wh - billed, 0)
        energy_extra += max(billed - tx.energy_wh, 0)
        if billed != tx.energy_wh:
            report.problems.append(
                f"session {session_id}: sent {tx.energy_wh} Wh, billed {billed} Wh"
            )
        amounts = paid.get(cdr["id"], [])
        if not amounts:
            payments_lost += 1
            report.problems.append(f"CDR {cdr['id']}: no payment")
        payments_extra += max(len(amounts) - 1, 0)
        if any(amount != cdr["total_incl_vat"] for amount in amounts):
            report.problems.append(
                f"CDR {cdr['id']}: total {cdr['total_incl_vat']}, paid {amounts}"
            )
    cdrs_extra += sum(len(v) for k, v in cdr_of.items() if k not in matched)
    payments_extra += sum(
        len(v) for k, v in paid.items() if k not in {c["id"] for c in cdrs}
    )

    expected = len(matched)
    report.lines += [
        Line("energy (Wh)", energy_sent, energy_stored, energy_lost, energy_extra),
        Line("CDRs", expected, len(cdrs), cdrs_lost, cdrs_extra),
        Line("payments", expected, len(payments), payments_lost, payments_extra),
    ]


async def _unmatched_stops(stack: Stack, chargers: list[str], report: Report) -> None:
    rows = await stack.sql(
        "SELECT charger_id, transaction_id FROM unmatched_stop"
        " WHERE charger_id = ANY($1)",
        chargers,
    )
    for row in rows:
        report.problems.append(
            f"stop of {row['charger_id']} transaction {row['transaction_id']}"
            " matched no session"
        )


async def unbilled(stack: Stack, ledgers: list[Ledger]) -> int:
    """Return how many of the ledgers' transactions are not billed yet."""
    rows = await stack.sql(
        "SELECT charger_id, transaction_id FROM session"
        " WHERE charger_id = ANY($1) AND state = $2",
        [ledger.charger_id for ledger in ledgers],
        BILLED,
    )
    billed = {(r["charger_id"], r["transaction_id"]) for r in rows}
    return sum(
        1
        for ledger in ledgers
        for tx in ledger.transactions
        if (ledger.charger_id, tx.transaction_id) not in billed
    )


def _traffic(ledgers: list[Ledger]) -> str:
    total = {
        name: sum(getattr(ledger, name) for ledger in ledgers)
        for name in (
            "sent",
            "answered",
            "attempts",
            "timeouts",
            "call_errors",
            "cut_off",
            "authorized_from_cache",
            "refused_connects",
        )
    }
    reconnections = sum(max(len(ledger.connections) - 1, 0) for ledger in ledgers)
    backlog = max((ledger.backlog_max for ledger in ledgers), default=0)
    return (
        f"charger calls: {total['sent']} sent, {total['answered']} answered,"
        f" {total['attempts']} attempts ({total['timeouts']} timed out,"
        f" {total['call_errors']} CALLERROR, {total['cut_off']} cut off);"
        f" {reconnections} reconnections, {total['refused_connects']} refused;"
        f" {total['authorized_from_cache']} starts authorized from cache;"
        f" at most {backlog} calls queued in a charger"
    )


def _key(key: SampleKey) -> str:
    charger_id, tx, at, context = key
    return f"{charger_id}/{tx} {at.isoformat()} {context}"
