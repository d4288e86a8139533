"""``python -m spr_gateway``: run one gateway configured by MOOVOLT_* variables."""

import contextlib

import uvloop

from moovolt.logs import setup_logging
from moovolt.settings import get_settings
from spr_gateway.app import run_gateway


def main() -> None:
    """Run the gateway until interrupted."""
    settings = get_settings()
    setup_logging(settings.log_level, "gateway")
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(run_gateway(settings))


if __name__ == "__main__":
    main()
