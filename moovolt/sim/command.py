"""``moovolt simulate``: its arguments, and the run that prints the report.

Only the arguments are defined at import: every ``moovolt`` command builds
the whole parser, and a gateway should not load the simulator to start.
"""

import argparse
import asyncio
import json
import logging
from typing import TYPE_CHECKING

from moovolt.settings import Settings

if TYPE_CHECKING:
    from moovolt.sim.report import Report
    from moovolt.sim.scenario import Scenario

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``moovolt simulate``'s options to ``parser``."""
    parser.add_argument("--chargers", type=int, default=10, help="how many chargers")
    parser.add_argument(
        "--duration", type=float, default=60.0, help="seconds of activity"
    )
    parser.add_argument(
        "--url",
        default=None,
        help="gateway base URL (default ws://127.0.0.1:<MOOVOLT_GATEWAY_PORT>"
        "<MOOVOLT_GATEWAY_PATH>)",
    )
    parser.add_argument(
        "--share-201",
        type=float,
        default=0.5,
        help="fraction of chargers speaking OCPP 2.0.1, the rest 1.6 (0.5)",
    )
    parser.add_argument(
        "--meter-interval", type=float, default=5.0, help="seconds between meter values"
    )
    parser.add_argument(
        "--meter-values", type=int, default=10, help="meter values per session"
    )
    parser.add_argument(
        "--sessions",
        type=int,
        default=0,
        help="sessions per charger (0: as many as the duration allows)",
    )
    parser.add_argument(
        "--reconnect",
        type=float,
        default=0.05,
        help="chance of a reconnect after each session (0.05)",
    )
    parser.add_argument(
        "--heartbeat",
        type=float,
        default=None,
        help="heartbeat interval in seconds (default: the boot answer's)",
    )
    parser.add_argument(
        "--pause", type=float, default=1.0, help="seconds between two sessions"
    )
    parser.add_argument(
        "--ramp", type=float, default=None, help="seconds over which chargers connect"
    )
    parser.add_argument(
        "--prefix", default="sim", help="charger ids <prefix>-<n>, tokens <PREFIX>-<n>"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the draws")
    parser.add_argument(
        "--no-provision",
        dest="provision",
        action="store_false",
        help="do not register the chargers and tokens in MOOVOLT_DATABASE_URL",
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a gateway that is not on a loopback address",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def scenario_from(args: argparse.Namespace, settings: Settings) -> "Scenario":
    """Return the scenario that the command line describes."""
    from moovolt.sim.scenario import Scenario

    url = args.url or (f"ws://127.0.0.1:{settings.gateway_port}{settings.gateway_path}")
    ramp = args.ramp if args.ramp is not None else min(10.0, args.chargers / 200)
    return Scenario(
        url=url,
        chargers=args.chargers,
        duration_s=args.duration,
        share_201=args.share_201,
        meter_interval_s=args.meter_interval,
        meter_values=args.meter_values,
        sessions=args.sessions,
        reconnect_probability=args.reconnect,
        heartbeat_s=args.heartbeat,
        pause_s=args.pause,
        ramp_s=ramp,
        prefix=args.prefix,
        seed=args.seed,
    )


async def simulate(
    scenario: "Scenario", settings: Settings, *, provisioned: bool
) -> "Report":
    """Provision the chargers if asked, then run the scenario."""
    from moovolt.sim.provision import provision
    from moovolt.sim.scenario import run_scenario

    if provisioned:
        await provision(scenario, settings.database_url)
    return await run_scenario(scenario)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``moovolt simulate``; returns the exit status.

    Exits 2 for a target that is not on this machine, 1 when a call went
    unanswered or a charger could not connect, else 0.
    """
    from moovolt.sim.guard import NotLoopback, check_target

    scenario = scenario_from(args, settings)
    try:
        check_target(scenario.url, allow_remote=args.allow_remote)
    except NotLoopback as exc:
        print(f"moovolt simulate: {exc}")
        return 2
    if scenario.chargers < 1 or scenario.duration_s <= 0:
        print("moovolt simulate: --chargers and --duration must be positive")
        return 2
    report = asyncio.run(simulate(scenario, settings, provisioned=args.provision))
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format())
    lost = sum(
        count
        for (_, outcome), count in report.answers.items()
        if outcome in ("timeout", "closed")
    )
    return 1 if lost or report.connect_failures else 0
