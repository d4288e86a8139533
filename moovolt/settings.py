"""Configuration of every moov.olt process, read from ``MOOVOLT_*`` variables."""

import os
import socket
from enum import StrEnum
from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
        description="development, test or production.",
    )
    log_level: str = "INFO"

    # Backing services.
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/moovolt"
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

    # moovolt up.
    data_dir: str = ".moovolt"
    temporal_ui_port: int = 8233


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings, read once."""
    return Settings()
