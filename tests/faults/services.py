"""The fault suite's own PostgreSQL cluster and RabbitMQ node, free to break.

The machine's PostgreSQL and RabbitMQ serve other test runs at the same
time, so the suite never stops them: it starts a cluster and a node of its
own, from the same Debian packages ``scripts/setup.sh`` installs, on free
ports and in a temporary directory, and stops, kills and starts those.

Both die with the test process: PostgreSQL's postmaster through the kernel's
parent-death signal, RabbitMQ (whose start script forks the Erlang VM)
through a watcher shell that kills the node's process group when the test
process goes.
"""

import asyncio
import contextlib
import ctypes
import os
import pwd
import re
import shutil
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import asyncpg

from tests.conftest import free_port

PR_SET_PDEATHSIG = 1
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 60.0
PG_ROOT = Path("/usr/lib/postgresql")
RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")


class ServiceError(Exception):
    """A service of the suite's own could not be set up or did not answer."""


def _die_with_parent(sig: int) -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, sig)


def _as_user(user: pwd.struct_passwd | None) -> Callable[[], None]:
    """Return a preexec function: become ``user``, then die with the parent."""

    def preexec() -> None:
        if user is not None:
            os.setgroups([])
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
        # After setuid: a change of credentials clears the parent-death signal.
        _die_with_parent(signal.SIGKILL)

    return preexec


def _postgres_bin() -> Path:
    """Return the bin directory of the newest PostgreSQL installed."""
    found = sorted(
        PG_ROOT.glob("*/bin/initdb"),
        key=lambda path: [int(part) for part in re.findall(r"\d+", path.parts[-3])],
    )
    if not found:
        raise ServiceError(
            f"no PostgreSQL server under {PG_ROOT}: run scripts/setup.sh"
        )
    return found[-1].parent


def _rabbit_script(name: str) -> str:
    """Return RabbitMQ's own script ``name`` (not Debian's su wrapper)."""
    beside = RABBIT_BIN / name
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise ServiceError(f"no {name}: run scripts/setup.sh")
    return found


class PostgresCluster:
    """A PostgreSQL cluster in ``root``, run by the ``postgres`` OS user as root.

    initdb refuses to run as root, so when the tests run as root the cluster
    belongs to ``postgres``; otherwise to the current user.
    """

    def __init__(self, root: Path, log_path: Path) -> None:
        self.root = root
        self.data = root / "pgdata"
        self.port = free_port()
        self.log_path = log_path
        self.bin = _postgres_bin()
        self.user = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def init(self) -> None:
        """Create the cluster: trust authentication, role ``postgres``."""
        if self.user is not None:
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
        done = subprocess.run(
            [
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            cwd=self.root,
            capture_output=True,
            preexec_fn=_as_user(self.user),
            timeout=120,
        )
        if done.returncode != 0:
            raise ServiceError(f"initdb failed: {done.stderr.decode(errors='replace')}")

    async def start(self) -> None:
        """Start the postmaster and wait until it takes connections."""
        self._spawn()
        await self._wait_ready()

    def _spawn(self) -> None:
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            [
                str(self.bin / "postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-k",
                str(self.root),
                "-c",
                "listen_addresses=127.0.0.1",
                # Stops here are clean; only a crash of the machine needs fsync.
                "-c",
                "fsync=off",
                "-c",
                "max_connections=200",
            ],
            cwd=self.root,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_as_user(self.user),
        )
        log.close()

    async def _wait_ready(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_TIMEOUT_S
        while True:
            if self.popen is not None and self.popen.poll() is not None:
                raise ServiceError(f"postgres exited:\n{self.log_tail()}")
            try:
                connection = await asyncpg.connect(self.admin_dsn, timeout=5)
            except (OSError, asyncpg.PostgresError, TimeoutError):
                if loop.time() > deadline:
                    raise ServiceError(
                        f"postgres not ready:\n{self.log_tail()}"
                    ) from None
                await asyncio.sleep(0.1)
                continue
            await connection.close()
            return

    async def stop(self) -> None:
        """Shut down fast (SIGINT): sessions are cut, commits are kept."""
        await _terminate(self.popen, signal.SIGINT)
        self.popen = None

    def kill(self) -> None:
        """SIGKILL the postmaster, if it runs."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=STOP_TIMEOUT_S)
        self.popen = None

    def log_tail(self, lines: int = 30) -> str:
        return _tail(self.log_path, lines)


class RabbitNode:
    """A RabbitMQ node of its own: own name, ports, Mnesia and logs in ``root``.

    Its configuration file replaces the machine's (which binds 5672), and no
    plugin is enabled. The Erlang cookie lives in ``root`` too (``HOME``).
    """

    def __init__(self, root: Path, name: str, log_path: Path) -> None:
        self.root = root
        self.node = f"{name}@localhost"
        self.port = free_port()
        self.log_path = log_path
        config = root / "rabbitmq.conf"
        config.write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        plugins = root / "enabled_plugins"
        plugins.write_text("[].\n")
        env_file = root / "rabbitmq-env.conf"
        env_file.write_text("")
        self.env = {
            **os.environ,
            "HOME": str(root),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(root / "log"),
            "RABBITMQ_PID_FILE": str(root / "rabbitmq.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(plugins),
            "RABBITMQ_CONFIG_FILE": str(config),
            "RABBITMQ_CONF_ENV_FILE": str(env_file),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }
        self.popen: subprocess.Popen[bytes] | None = None
        self._watcher: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    async def start(self) -> None:
        """Start the node and wait until it completes an AMQP handshake."""
        self._spawn()
        await self._wait_ready()

    def _spawn(self) -> None:
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            [_rabbit_script("rabbitmq-server")],
            cwd=self.root,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
        log.close()
        self._watcher = _group_watcher(self.popen.pid)

    async def _wait_ready(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_TIMEOUT_S
        while True:
            if self.popen is not None and self.popen.poll() is not None:
                raise ServiceError(f"rabbitmq exited:\n{self.log_tail()}")
            try:
                # The port first: every failed AMQP attempt logs an error.
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                await writer.wait_closed()
                connection = await asyncio.wait_for(aio_pika.connect(self.url), 5)
            except (OSError, TimeoutError, aio_pika.exceptions.AMQPError):
                if loop.time() > deadline:
                    raise ServiceError(
                        f"rabbitmq not ready:\n{self.log_tail()}"
                    ) from None
                await asyncio.sleep(0.25)
                continue
            await connection.close()
            return

    async def stop(self) -> None:
        """Stop the node the way an operator does: ``rabbitmqctl stop``."""
        if self.popen is None or self.popen.poll() is not None:
            self._end()
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(
                subprocess.run,
                [_rabbit_script("rabbitmqctl"), "-n", self.node, "stop"],
                env=self.env,
                cwd=self.root,
                capture_output=True,
                timeout=STOP_TIMEOUT_S,
            )
        await _terminate(self.popen, signal.SIGTERM)
        self._end()

    def kill(self) -> None:
        """SIGKILL the node's whole process group."""
        if self.popen is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=STOP_TIMEOUT_S)
        self._end()

    def _end(self) -> None:
        self.popen = None
        if self._watcher is not None:
            self._watcher.kill()
            self._watcher.wait()
            self._watcher = None

    def log_tail(self, lines: int = 30) -> str:
        return _tail(self.log_path, lines)


@dataclass
class Services:
    """The suite's own PostgreSQL cluster and RabbitMQ node."""

    postgres: PostgresCluster
    rabbit: RabbitNode

    async def ensure_running(self) -> None:
        """Start whichever of the two a failed test left stopped."""
        if self.postgres.popen is None or self.postgres.popen.poll() is not None:
            await self.postgres.start()
        if self.rabbit.popen is None or self.rabbit.popen.poll() is not None:
            await self.rabbit.start()


def _group_watcher(pgid: int) -> subprocess.Popen[bytes]:
    """Start a shell that kills process group ``pgid`` when this process dies."""
    script = (
        f"trap 'kill -KILL -{pgid} 2>/dev/null; exit 0' TERM; while :; do sleep 1; done"
    )
    return subprocess.Popen(
        ["/bin/sh", "-c", script],
        stdin=subprocess.DEVNULL,
        preexec_fn=lambda: _die_with_parent(signal.SIGTERM),
    )


async def _terminate(popen: subprocess.Popen[bytes] | None, sig: int) -> None:
    """Send ``sig`` and wait for the exit; SIGKILL after ``STOP_TIMEOUT_S``."""
    if popen is None or popen.poll() is not None:
        return
    popen.send_signal(sig)
    try:
        await asyncio.to_thread(popen.wait, STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        popen.kill()
        await asyncio.to_thread(popen.wait, STOP_TIMEOUT_S)


def _tail(path: Path, lines: int) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
