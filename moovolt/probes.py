"""Liveness, readiness and metrics over plain HTTP, for every process.

``/healthz`` answers 200 while the process runs. ``/readyz`` answers 200 when
every readiness check says ``ok``, else 503; its JSON body names each check's
state. ``/metrics`` is the process's Prometheus registry. The gateway answers
these inside its WebSocket server (``spr_gateway.health``); the worker, which
serves no HTTP otherwise, runs a ``ProbeServer``; the API has FastAPI routes.
"""

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus

from prometheus_client import CollectorRegistry

from bus.amqp import BusClient
from moovolt import metrics

logger = logging.getLogger(__name__)

HEALTHZ = "/healthz"
READYZ = "/readyz"
METRICS = "/metrics"
PATHS = frozenset({HEALTHZ, READYZ, METRICS})
OK = "ok"
JSON = "application/json"
TEXT = "text/plain; charset=utf-8"
# A check that takes longer than this counts as failed: a probe must answer
# well within the prober's own timeout.
CHECK_TIMEOUT_S = 2.0
# The worker's probe server: a request head larger or slower than this is cut.
MAX_REQUEST_BYTES = 8192
READ_TIMEOUT_S = 5.0

# Returns OK, or a short state such as "down", "connecting" or "draining".
Check = Callable[[], Awaitable[str]]
# Not ready on purpose: starting up or shutting down, nothing to warn about.
EXPECTED = frozenset({"starting", "connecting", "draining"})


@dataclass(frozen=True, slots=True)
class ProbeAnswer:
    """An HTTP answer to a probe."""

    status: HTTPStatus
    body: str
    content_type: str


LIVE = ProbeAnswer(HTTPStatus.OK, json.dumps({"status": OK}) + "\n", JSON)


def probe_path(target: str) -> str | None:
    """Return the probe a request target asks for, or None if it is no probe."""
    path = target.split("?", 1)[0]
    return path if path in PATHS else None


def bus_state(bus: BusClient) -> str:
    """Return OK if ``bus`` is open and connected to the broker, else ``down``."""
    try:
        connection = bus.connection
    except RuntimeError:
        return "down"
    if connection.is_closed or not connection.connected.is_set():
        return "down"
    return OK


class Readiness:
    """Judge readiness from named checks, and log when the verdict changes.

    Args:
        checks: what must be ``ok`` for the process to be ready, by name.
        timeout_s: how long one check may take before it counts as failed.
    """

    def __init__(
        self, checks: Mapping[str, Check], *, timeout_s: float = CHECK_TIMEOUT_S
    ) -> None:
        self.checks = dict(checks)
        self.timeout_s = timeout_s
        self._ready: bool | None = None

    async def answer(self) -> ProbeAnswer:
        """Run every check at once; answer 200 if all are ``ok``, else 503."""
        names = list(self.checks)
        states = await asyncio.gather(*(self._run(name) for name in names))
        results = dict(zip(names, states, strict=True))
        ready = all(state == OK for state in results.values())
        self._log(ready, results)
        body = {"status": "ready" if ready else "not ready", **results}
        status = HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE
        return ProbeAnswer(status, json.dumps(body) + "\n", JSON)

    async def _run(self, name: str) -> str:
        try:
            async with asyncio.timeout(self.timeout_s):
                return await self.checks[name]()
        except TimeoutError:
            return "timeout"
        except Exception as exc:
            logger.debug("readiness check %s failed: %r", name, exc)
            return "down"

    def _log(self, ready: bool, results: Mapping[str, str]) -> None:
        if ready == self._ready:
            return
        failing = {k: v for k, v in results.items() if v != OK}
        text = ", ".join(f"{k}={v}" for k, v in failing.items())
        if ready:
            logger.info("ready")
        elif set(failing.values()) <= EXPECTED:
            logger.info("not ready: %s", text)
        else:
            logger.warning("not ready: %s", text)
        self._ready = ready


async def answer(
    path: str, readiness: Readiness, registry: CollectorRegistry
) -> ProbeAnswer:
    """Answer the probe at ``path`` (one of ``PATHS``).

    Args:
        path: ``/healthz``, ``/readyz`` or ``/metrics``.
        readiness: the process's readiness checks.
        registry: the process's metrics.

    Returns:
        The status, body and content type to send.
    """
    if path == READYZ:
        return await readiness.answer()
    if path == METRICS:
        body, content_type = metrics.exposition(registry)
        return ProbeAnswer(HTTPStatus.OK, body, content_type)
    return LIVE


class ProbeServer:
    """Serve ``GET /healthz``, ``/readyz`` and ``/metrics`` on a port of its own.

    A minimal HTTP/1.1 responder: one request per connection, no body read,
    ``Connection: close``. It is meant for probes and Prometheus on an internal
    network, not for the public.

    Args:
        host: the listen address.
        port: the listen port (0: any free one, see ``port``).
        readiness: the process's readiness checks.
        registry: the process's metrics.
    """

    def __init__(
        self,
        host: str,
        port: int,
        readiness: Readiness,
        registry: CollectorRegistry,
    ) -> None:
        self.host = host
        self.readiness = readiness
        self.registry = registry
        self._port = port
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The port listened on (the one asked for, or the one given for 0)."""
        if self._server is not None and self._server.sockets:
            return int(self._server.sockets[0].getsockname()[1])
        return self._port

    async def start(self) -> None:
        """Listen.

        Raises:
            OSError: the address is in use or cannot be bound.
        """
        self._server = await asyncio.start_server(
            self._serve, self.host, self._port, limit=MAX_REQUEST_BYTES
        )
        logger.info("probes and metrics on http://%s:%s", self.host, self.port)

    async def close(self) -> None:
        """Stop listening and wait for the requests being answered."""
        if self._server is None:
            return
        self._server.close()
        await self._server.wait_closed()
        self._server = None

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            async with asyncio.timeout(READ_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
            method, target = _request_line(head)
            reply = await self._reply(method, target)
            writer.write(reply)
            await writer.drain()
        except (TimeoutError, ValueError, OSError, asyncio.IncompleteReadError):
            # A prober that went away or spoke no HTTP: nothing to answer.
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _reply(self, method: str, target: str) -> bytes:
        path = probe_path(target)
        if path is None:
            return _response(HTTPStatus.NOT_FOUND, "Not Found\n", TEXT)
        if method not in ("GET", "HEAD"):
            return _response(
                HTTPStatus.METHOD_NOT_ALLOWED,
                "Method Not Allowed\n",
                TEXT,
                allow="GET, HEAD",
            )
        probe = await answer(path, self.readiness, self.registry)
        return _response(
            probe.status, probe.body, probe.content_type, head=method == "HEAD"
        )


async def fetch_status(
    host: str, port: int, path: str, *, timeout_s: float = CHECK_TIMEOUT_S
) -> int | None:
    """Return the HTTP status of ``GET path`` on ``host:port`` (plain HTTP).

    Returns:
        The status code, or None when nothing answers in time.
    """
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(request.encode())
                await writer.drain()
                status_line = await reader.readline()
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except (OSError, TimeoutError):
        return None
    parts = status_line.split()
    if len(parts) < 2 or not parts[1].isdigit():
        return None
    return int(parts[1])


def _request_line(head: bytes) -> tuple[str, str]:
    """Return the method and target of an HTTP request head.

    Raises:
        ValueError: the first line is not ``METHOD TARGET HTTP/x``.
    """
    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    method, target, version = line.split(" ")
    if not version.startswith("HTTP/"):
        raise ValueError(line)
    return method, target


def _response(
    status: HTTPStatus,
    body: str,
    content_type: str,
    *,
    head: bool = False,
    allow: str | None = None,
) -> bytes:
    payload = body.encode()
    lines = [
        f"HTTP/1.1 {status.value} {status.phrase}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(payload)}",
        "Cache-Control: no-store",
        "Connection: close",
    ]
    if allow is not None:
        lines.append(f"Allow: {allow}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (b"" if head else payload)
