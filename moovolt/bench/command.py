"""``moovolt bench``: its arguments, and the run that prints the table.

Only the arguments are defined at import: every ``moovolt`` command builds
the whole parser, and a gateway should not load the bench to start.
"""

import argparse
import asyncio
import json
import logging
from pathlib import Path

from moovolt.settings import Settings

logger = logging.getLogger(__name__)

FULL_SIZES = "100,1000,10000"
QUICK_SIZES = "20"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``moovolt bench``'s options to ``parser``."""
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a short run (default sizes {QUICK_SIZES}): checks the bench, "
        "not the speed",
    )
    parser.add_argument(
        "--chargers",
        default=None,
        help=f"comma-separated numbers of chargers (default {FULL_SIZES})",
    )
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.add_argument("--svg", type=Path, help="also draw the figures as SVG")
    parser.add_argument(
        "--profile",
        choices=["gateway", "worker"],
        help="run that process under cProfile and print where its CPU went",
    )
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the processes' logs"
    )


def sizes(text: str) -> list[int]:
    """Parse ``--chargers``: positive integers, comma-separated.

    Raises:
        ValueError: something else.
    """
    found = [int(part) for part in text.split(",") if part.strip()]
    if not found or any(n < 1 for n in found):
        raise ValueError(f"not a list of positive numbers: {text}")
    return found


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``moovolt bench``; returns the exit status (0 once it printed)."""
    from moovolt.bench.plot import draw
    from moovolt.bench.report import as_json
    from moovolt.bench.runner import run_bench
    from moovolt.bench.table import format_table

    try:
        chargers = sizes(args.chargers or (QUICK_SIZES if args.quick else FULL_SIZES))
    except ValueError as exc:
        print(f"moovolt bench: {exc}")
        return 2
    results = asyncio.run(
        run_bench(
            settings,
            chargers,
            quick=args.quick,
            keep_logs=args.keep_logs,
            profile=args.profile,
        )
    )
    print(format_table(results), flush=True)
    if results.profile:
        print(f"\nWhere the {results.profiled}'s CPU went (cProfile, own time):\n")
        print(results.profile)
    if args.json is not None:
        args.json.write_text(json.dumps(as_json(results), indent=2) + "\n")
    if args.svg is not None:
        args.svg.write_text(draw(results))
    return 0
