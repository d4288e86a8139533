"""The bench's figures as plain data, for ``moovolt bench --json``."""

from dataclasses import asdict
from typing import Any

from moovolt.bench.runner import Results


def as_json(results: Results) -> dict[str, Any]:
    """Return everything ``results`` holds as JSON-ready data."""
    return {
        "quick": results.quick,
        "chargers": results.chargers,
        "elapsed_s": round(results.elapsed_s, 1),
        "machine_before": asdict(results.machine_before),
        "machine_after": (
            asdict(results.machine_after) if results.machine_after else None
        ),
        "baselines": asdict(results.baselines) if results.baselines else None,
        "gateway": {n: asdict(f) for n, f in results.gateway.items()},
        "raw_websockets": {n: asdict(f) for n, f in results.echo.items()},
        "sessions": {
            n: {
                "authorize_ms": s.authorize_ms,
                "start_ms": s.start_ms,
                "billed_per_s": s.billed_per_s,
                "billed": s.billed,
                "offered_per_s": s.offered_per_s,
                "booted_per_s": s.booted_per_s,
                "report": s.report.to_dict(),
            }
            for n, s in results.sessions.items()
        },
    }
