"""The ``moovolt`` command: run the stack or one of its processes, and admin.

Processes: ``up`` (everything, for development), ``gateway``, ``worker``,
``api``. Administration: ``migrate``, ``operator``, ``demo seed``,
``temporal-setup``. Load: ``simulate`` (simulated chargers), ``bench`` (the
benchmarks). Every process reads its configuration from ``MOOVOLT_*``
environment variables.
"""

import argparse
import asyncio
import importlib
import logging
import math
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, cast

from pydantic import ValidationError

from moovolt.auth import Role
from moovolt.logs import setup_logging
from moovolt.settings import Settings, get_settings

# Named, not __name__: this module also runs as `python -m moovolt.cli`.
logger = logging.getLogger("moovolt.cli")

Runner = Callable[[Settings], Coroutine[Any, Any, None]]


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of the ``moovolt`` command line."""
    parser = argparse.ArgumentParser(
        prog="moovolt",
        description="moov.olt: an OCPP charging station management system.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser(
        "up", help="run the whole stack in the foreground (development)"
    )
    up.add_argument(
        "--no-demo",
        dest="demo",
        action="store_false",
        help="do not seed the demo network into an empty database",
    )
    for process in ("gateways", "workers"):
        up.add_argument(
            f"--{process}",
            type=_positive,
            default=1,
            metavar="N",
            help=f"how many {process} to run (default 1)",
        )

    commands.add_parser("gateway", help="run an SPR gateway (OCPP WebSocket server)")
    commands.add_parser("worker", help="run the SG worker (ingress and workflows)")
    commands.add_parser("api", help="run the HTTP API and the dashboard")
    commands.add_parser("migrate", help="create the database if absent and migrate")
    commands.add_parser(
        "temporal-setup",
        help="register the search attributes on a Temporal server",
    )

    operator = commands.add_parser("operator", help="manage API operators")
    operator_commands = operator.add_subparsers(
        dest="operator_command", required=True, metavar="ACTION"
    )
    create = operator_commands.add_parser(
        "create", help="create an operator and print an API token"
    )
    create.add_argument("name")
    create.add_argument(
        "--role", choices=[role.value for role in Role], default=Role.OPERATOR.value
    )
    create.add_argument(
        "--password",
        help="optional password (stored as an argon2 hash) for the dashboard",
    )
    token = operator_commands.add_parser(
        "token", help="issue another API token for an operator"
    )
    token.add_argument("name")

    demo = commands.add_parser("demo", help="the demo network")
    demo_commands = demo.add_subparsers(
        dest="demo_command", required=True, metavar="ACTION"
    )
    demo_commands.add_parser(
        "seed", help="add the demo chargers, tokens, tariff and admin"
    )

    from moovolt.bench import command as bench
    from moovolt.sim import command as sim

    sim.add_arguments(
        commands.add_parser(
            "simulate", help="run simulated chargers against a gateway on this machine"
        )
    )
    bench.add_arguments(
        commands.add_parser(
            "bench", help="run the benchmarks, each beside its baseline, as a table"
        )
    )
    return parser


def _load_runner(module: str, name: str) -> Runner:
    # Imported when the command runs: each process loads only its own half.
    return cast(Runner, getattr(importlib.import_module(module), name))


async def _until_signal(main: Coroutine[Any, Any, None], grace_s: float) -> int:
    """Run ``main`` until it returns or SIGINT/SIGTERM cancels it.

    A cancelled process drains first, for at most ``grace_s``; a second signal
    cancels the drain too.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(main)

    def stop(signum: signal.Signals) -> None:
        if task.cancelling():
            logger.warning("%s again: stopping without waiting", signum.name)
        else:
            logger.info(
                "%s: stopping after what is in flight (at most %.0f s)",
                signum.name,
                grace_s,
            )
        task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop, signum)
    try:
        await task
    except asyncio.CancelledError:
        logger.info("stopped")
    return 0


def _serve(role: str, module: str, name: str, settings: Settings) -> int:
    setup_logging(settings.log_level, role)
    run = _load_runner(module, name)
    return asyncio.run(_until_signal(run(settings), settings.shutdown_grace_s))


def _api(settings: Settings) -> int:
    import uvicorn

    from api.app import create_app

    setup_logging(settings.log_level, "api")
    config = uvicorn.Config(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,
        proxy_headers=True,
        timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_s),
    )
    # uvicorn handles SIGINT/SIGTERM itself: it stops accepting and lets the
    # requests in flight finish, at most MOOVOLT_SHUTDOWN_GRACE_S. Then it
    # raises the signal again for the handler it found, this one: a stop on
    # purpose exits 0, as the gateway and the worker do.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _exit_stopped)
    uvicorn.Server(config).run()
    return 0


def _exit_stopped(signum: int, frame: object) -> None:
    logger.info("stopped")
    raise SystemExit(0)


async def _migrate(settings: Settings) -> None:
    from store.migrate import ensure_database, upgrade_async

    await ensure_database(settings.database_url)
    await upgrade_async(settings.database_url)
    logger.info("database migrated")


async def _with_db(
    settings: Settings, action: Callable[[Any], Coroutine[Any, Any, int]]
) -> int:
    from store.db import make_engine, make_sessionmaker

    engine = make_engine(settings.database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as db:
            return await action(db)
    finally:
        await engine.dispose()


def _operator(args: argparse.Namespace, settings: Settings) -> int:
    from sqlmodel import select

    from moovolt.auth import OperatorExists, create_operator, issue_token
    from store.models import Operator

    async def create(db: Any) -> int:
        try:
            operator = await create_operator(
                db, args.name, Role(args.role), password=args.password
            )
        except OperatorExists:
            print(f"operator {args.name} exists; use `moovolt operator token`")
            return 1
        token = await issue_token(db, operator)
        print(f"operator {args.name} ({args.role}) created; API token, shown once:")
        print(token)
        return 0

    async def token(db: Any) -> int:
        found = await db.exec(select(Operator).where(Operator.name == args.name))
        operator = found.first()
        if operator is None:
            print(f"no operator {args.name}")
            return 1
        print(f"new API token for {args.name} ({operator.role}), shown once:")
        print(await issue_token(db, operator))
        return 0

    action = create if args.operator_command == "create" else token
    return asyncio.run(_with_db(settings, action))


def _demo_seed(settings: Settings) -> int:
    from moovolt.demo import seed
    from moovolt.up import print_demo

    async def run(db: Any) -> int:
        print_demo(settings, await seed(db))
        return 0

    return asyncio.run(_with_db(settings, run))


async def _temporal_setup(settings: Settings) -> None:
    from temporal.client import connect
    from temporal.search_attributes import ensure_search_attributes

    client = await connect(settings)
    added = await ensure_search_attributes(client, settings.temporal_namespace)
    print(f"search attributes added: {', '.join(added) or 'none (all present)'}")


def _positive(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError("expected a number from 1 to 64")
    return value


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the parsed command and return the process's exit status."""
    match args.command:
        case "up":
            from moovolt.up import run_up

            return run_up(
                settings, demo=args.demo, gateways=args.gateways, workers=args.workers
            )
        case "gateway":
            return _serve("gateway", "spr_gateway.app", "run_gateway", settings)
        case "worker":
            return _serve("worker", "moovolt.worker", "run_worker", settings)
        case "api":
            return _api(settings)

    setup_logging(settings.log_level, "cli")
    match args.command:
        case "migrate":
            asyncio.run(_migrate(settings))
        case "temporal-setup":
            asyncio.run(_temporal_setup(settings))
        case "operator":
            return _operator(args, settings)
        case "demo":
            return _demo_seed(settings)
        case "simulate":
            from moovolt.sim.command import run as simulate

            return simulate(args, settings)
        case "bench":
            from moovolt.bench.command import run as bench

            return bench(args, settings)
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``moovolt`` command.

    Settings that do not validate, such as development secrets outside
    development, stop it before anything starts, with status 2.
    """
    args = build_parser().parse_args(argv)
    try:
        settings = get_settings()
    except ValidationError as exc:
        # Not str(exc): it shows the input, secrets included.
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "settings"
            print(f"moovolt: {where}: {error['msg']}", file=sys.stderr)
        sys.exit(2)
    sys.exit(run(args, settings))


if __name__ == "__main__":
    main()
