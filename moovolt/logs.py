"""Logging set-up shared by every moov.olt process.

Each process logs to stderr, one line per record, tagged with its role so the
interleaved output of ``moovolt up`` stays readable.
"""

import logging

FORMAT = "%(asctime)s %(levelname)-7s [{role}] %(name)s: %(message)s"


def setup_logging(level: str, role: str) -> None:
    """Configure the root logger once for this process.

    Args:
        level: a level name such as ``INFO`` (``settings.log_level``).
        role: the process's role, shown on every line (``api``, ``worker``...).
    """
    logging.basicConfig(
        level=level.upper(),
        format=FORMAT.format(role=role),
        datefmt="%Y-%m-%dT%H:%M:%S%z",
        force=True,
    )
    # The ocpp library logs every frame at INFO.
    logging.getLogger("ocpp").setLevel(logging.WARNING)
