"""The API's Temporal client, connected in the background.

The API starts, and serves everything that needs only PostgreSQL, while the
Temporal frontend is still booting; routes that need Temporal answer 503 until
it answers.
"""

import asyncio
import contextlib
import logging

from temporalio.client import Client

from api.problems import ProblemError
from moovolt.settings import Settings
from temporal.client import connect

logger = logging.getLogger(__name__)


class TemporalUnavailable(ProblemError):
    """Temporal does not answer; the request may be retried later."""

    def __init__(self, detail: str = "Temporal does not answer; retry later.") -> None:
        super().__init__(
            503,
            "Temporal unavailable",
            detail,
            kind="temporal-unavailable",
            headers={"Retry-After": "5"},
        )


class TemporalLink:
    """Holds one Temporal client, connecting in the background until it can.

    Args:
        settings: where Temporal is.
        retry_s: pause between background connection attempts.
        connect_timeout_s: how long a request waits for a connection attempt.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        retry_s: float = 2.0,
        connect_timeout_s: float = 5.0,
    ) -> None:
        self.settings = settings
        self.retry_s = retry_s
        self.connect_timeout_s = connect_timeout_s
        self._client: Client | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        """Whether a client has been connected."""
        return self._client is not None

    def start(self) -> None:
        """Begin connecting in the background."""
        self._task = asyncio.create_task(self._keep_trying(), name="temporal-link")

    async def close(self) -> None:
        """Stop connecting; the client's channel closes with the process."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def client(self) -> Client:
        """Return the client, trying once more to connect if there is none.

        Raises:
            TemporalUnavailable: Temporal does not answer.
        """
        if self._client is not None:
            return self._client
        if not await self._try_connect():
            raise TemporalUnavailable()
        assert self._client is not None
        return self._client

    async def _try_connect(self) -> bool:
        async with self._lock:
            if self._client is not None:
                return True
            try:
                self._client = await asyncio.wait_for(
                    connect(self.settings), self.connect_timeout_s
                )
            except (RuntimeError, TimeoutError) as exc:
                logger.debug("temporal not reachable: %s", exc)
                return False
        logger.info("connected to temporal at %s", self.settings.temporal_address)
        return True

    async def _keep_trying(self) -> None:
        attempts = 0
        while not await self._try_connect():
            attempts += 1
            if attempts == 1 or attempts % 30 == 0:
                logger.warning(
                    "temporal at %s does not answer yet; retrying",
                    self.settings.temporal_address,
                )
            await asyncio.sleep(self.retry_s)
