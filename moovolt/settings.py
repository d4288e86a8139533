"""Configuration of every moov.olt process, read from ``MOOVOLT_*`` variables."""

import os
import socket
from enum import StrEnum
from functools import lru_cache
from typing import Literal, Self
from urllib.parse import unquote, urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Environments that may run on the well-known development secrets.
DEVELOPMENT_ENVIRONMENTS = frozenset({"development", "test"})
DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/moovolt"
# Passwords that ship with RabbitMQ, the PostgreSQL image, this project's
# compose file, or that anyone tries first.
WELL_KNOWN_PASSWORDS = frozenset(
    {"", "guest", "postgres", "moovolt", "password", "changeme", "secret", "admin"}
)


class BootPolicy(StrEnum):
    """What a BootNotification from a charger that is not accepted gets."""

    REJECTED = "Rejected"
    PENDING = "Pending"


def _default_gateway_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Settings(BaseSettings):
    """Settings shared by the gateway, the SG worker and the API.

    Every field is read from the environment variable ``MOOVOLT_<FIELD>``.
    """

    model_config = SettingsConfigDict(env_prefix="MOOVOLT_", extra="ignore")

    environment: str = Field(
        default="development",
        description="development, test or production. Any but development "
        "and test refuses the well-known secrets (``default_secrets``).",
    )
    log_level: str = "INFO"

    # Backing services.
    database_url: str = DEFAULT_DATABASE_URL
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    bus_prefix: str = Field(
        default="moovolt",
        description="Prefix of every exchange and queue, so that several "
        "deployments (or test runs) can share one RabbitMQ.",
    )
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "moovolt-sg"
    temporal_ui_url: str = "http://127.0.0.1:8233"

    # Gateway.
    gateway_id: str = Field(default_factory=_default_gateway_id)
    gateway_host: str = "0.0.0.0"
    gateway_port: int = 9000
    gateway_path: str = "/ocpp/"
    max_frame_bytes: int = 65536
    decision_timeout_s: float = Field(
        default=10.0,
        description="How long the gateway waits for the SG's answer to a "
        "charger's request before it answers the charger with a CALLERROR.",
    )
    call_timeout_s: float = Field(
        default=30.0,
        description="How long the gateway waits for a charger to answer a "
        "CSMS-initiated call.",
    )

    # Gateway limits per charger; applied by spr_gateway.limits.
    gateway_rate_per_s: float = Field(
        default=10.0,
        gt=0,
        description="Frames per second a charger may send on average. A charger "
        "that waits for each answer is slowed to this rate; calls sent beyond "
        "it without waiting are refused with a GenericError CALLERROR.",
    )
    gateway_rate_burst: int = Field(
        default=50,
        ge=1,
        description="Frames a charger may send at once above the average rate.",
    )
    gateway_flood_close_s: float = Field(
        default=30.0,
        gt=0,
        description="A charger still over its rate this long after it first "
        "went over is disconnected with close code 1008.",
    )
    gateway_max_unreadable_frames: int = Field(
        default=10,
        ge=1,
        description="Unreadable frames in a row, each answered, after which a "
        "charger is disconnected with close code 1002.",
    )

    # Gateway TLS (OCPP security profiles 2 and 3); checked by spr_gateway.tls.
    gateway_tls_cert_file: str = Field(
        default="",
        description="PEM server certificate, intermediates after it. TLS is on "
        "when this and the key file are set.",
    )
    gateway_tls_key_file: str = Field(
        default="",
        description="PEM private key of the server certificate, unencrypted.",
    )
    gateway_tls_client_ca_file: str = Field(
        default="",
        description="PEM certificates of the CAs that sign chargers' client "
        "certificates. When set, the gateway asks for a client certificate "
        "(mutual TLS, security profile 3).",
    )
    gateway_tls_min_version: Literal["1.2", "1.3"] = Field(
        default="1.2",
        description="Oldest TLS version the gateway accepts.",
    )

    # Charger registration and provisioning.
    auto_register_chargers: bool = Field(
        default=False,
        description="Accept unknown charge point ids at the handshake and "
        "register them as Pending.",
    )
    boot_policy_unaccepted: BootPolicy = BootPolicy.PENDING
    heartbeat_interval_s: int = 300

    # Sessions.
    remote_start_timeout_s: float = Field(
        default=180.0,
        description="A remote start whose StartTransaction has not arrived "
        "after this long is ended as never started.",
    )
    meter_silence_timeout_s: float = Field(
        default=900.0,
        description="A running session with no meter value or message for this "
        "long is flagged Silent in its workflow.",
    )
    session_max_duration_s: float = Field(
        default=7 * 24 * 3600.0,
        description="A session still open after this long is closed and billed.",
    )
    webhook_retry_initial_s: float = Field(
        default=5.0,
        description="First wait before a failed webhook delivery is tried again; "
        "it doubles after each try.",
    )
    webhook_retry_max_s: float = Field(
        default=600.0, description="Longest wait between two webhook tries."
    )
    webhook_give_up_after_s: float = Field(
        default=86_400.0,
        description="A webhook delivery still failing after this long is "
        "abandoned (logged, and its workflow fails).",
    )
    transaction_start_grace_s: float = Field(
        default=60.0,
        description="A 2.0.1 transaction that ended before its start arrived "
        "waits this long for the start (offline queues replay out of order) "
        "before it is billed from the readings stored.",
    )
    decision_prefetch: int = Field(
        default=64,
        description="Charger requests one SG process decides on at once.",
    )
    meter_signal_interval_s: float = Field(
        default=30.0,
        description="At most one meter-progress signal per session this often.",
    )

    # API.
    api_host: str = "0.0.0.0"
    api_port: int = 8000

    # Operations: probes, metrics and shutdown (moovolt.probes, moovolt.metrics).
    worker_health_host: str = Field(
        default="0.0.0.0",
        description="Listen address of the worker's /healthz, /readyz and /metrics.",
    )
    worker_health_port: int = Field(
        default=9100,
        ge=0,
        description="Port of the worker's /healthz, /readyz and /metrics; "
        "0 serves none.",
    )
    shutdown_grace_s: float = Field(
        default=15.0,
        ge=0,
        description="On SIGTERM, how long a process may finish what is in "
        "flight (chargers' calls, decisions, event batches, API requests) "
        "before it stops anyway.",
    )

    # moovolt up.
    data_dir: str = ".moovolt"
    temporal_ui_port: int = 8233

    @model_validator(mode="after")
    def _no_default_secrets(self) -> Self:
        if self.environment.lower() in DEVELOPMENT_ENVIRONMENTS:
            return self
        found = default_secrets(self)
        if found:
            raise ValueError(
                f"MOOVOLT_ENVIRONMENT={self.environment} refuses the development "
                f"secrets: {'; '.join(found)}"
            )
        return self


def default_secrets(settings: Settings) -> list[str]:
    """Return what in ``settings`` is a well-known secret, one line each.

    The database URL may not be the development default, nor carry a
    well-known password; without a password it is let through (PGPASSWORD,
    a passfile or a client certificate may supply one). The AMQP URL must
    name a user other than ``guest`` and a password that is not well known:
    without them the client falls back to RabbitMQ's guest/guest.
    """
    found = []
    if settings.database_url == DEFAULT_DATABASE_URL:
        found.append("MOOVOLT_DATABASE_URL is the development default")
    elif _password(settings.database_url) in WELL_KNOWN_PASSWORDS:
        found.append("MOOVOLT_DATABASE_URL has a well-known password")

    amqp = urlsplit(settings.amqp_url)
    user = unquote(amqp.username) if amqp.username else None
    if user is None or user == "guest":
        found.append("MOOVOLT_AMQP_URL logs in as RabbitMQ's guest")
    elif _password(settings.amqp_url) in WELL_KNOWN_PASSWORDS | {None}:
        found.append("MOOVOLT_AMQP_URL has no password or a well-known one")
    return found


def _password(url: str) -> str | None:
    password = urlsplit(url).password
    return None if password is None else unquote(password)


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings, read once."""
    return Settings()
