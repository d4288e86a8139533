"""The SPR gateway on TLS and mutual TLS (OCPP security profiles 2 and 3).

The same set-up as ``test_gateway``: each test runs its own gateway, here with
a server certificate and usually a client CA, under a bus prefix of its own,
with an SG stand-in that also enforces per-charger security profiles. The
charger is the ``ocpp`` library's 1.6 ``ChargePoint`` over ``wss://`` with an
``ssl.SSLContext`` of its own. Certificates are issued for each test.
"""

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
import websockets
from cryptography.x509.oid import ExtendedKeyUsageOID
from ocpp.v16 import call
from websockets.exceptions import InvalidMessage, InvalidStatus
from websockets.http11 import Response

from bus.amqp import BusClient
from bus.contract import (
    ChargerConnecting,
    ConnectDecision,
    Decision,
    EventEnvelope,
    Topology,
)
from moovolt.settings import Settings
from spr_gateway import tls
from spr_gateway.app import run_gateway
from tests.integration.certs import Authority, Issued, client_context
from tests.integration.gateway_support import (
    AMQP_URL,
    OCPP16,
    WAIT_S,
    Charger,
    Gateways,
    StandInSG,
    basic,
    gateways,
    topology,
    url,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

__all__ = ["gateways", "topology"]  # fixtures

# Charger id prefixes the stand-in SG requires a security profile of.
REQUIRED_PROFILES = {"sp2": 2, "sp3": 3}


class ProfileSG(StandInSG):
    """The stand-in SG, refusing chargers whose connection proves too little.

    A charger whose id starts with ``sp2-`` needs security profile 2, one
    whose id starts with ``sp3-`` needs profile 3.
    """

    def decide(self, envelope: EventEnvelope) -> Decision | None:
        event = envelope.event
        if isinstance(event, ChargerConnecting):
            prefix = envelope.charger_id.split("-", 1)[0]
            if event.security_profile < REQUIRED_PROFILES.get(prefix, 1):
                return ConnectDecision(accepted=False, reason="security_profile")
        return super().decide(envelope)


@pytest.fixture
async def sg(topology: Topology) -> AsyncIterator[ProfileSG]:
    async with BusClient(AMQP_URL, topology) as bus:
        stand_in = ProfileSG(bus)
        await stand_in.start()
        yield stand_in


@dataclass(frozen=True)
class Pki:
    """The CAs of one test and the gateway's server certificate."""

    server_ca: Authority
    charger_ca: Authority
    rogue_ca: Authority
    server: Issued


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    server_ca = Authority(tmp_path, "server-ca")
    return Pki(
        server_ca=server_ca,
        charger_ca=Authority(tmp_path, "charger-ca"),
        rogue_ca=Authority(tmp_path, "rogue-ca"),
        server=server_ca.server(),
    )


def tls_settings(pki: Pki, *, mutual: bool = True, **overrides: Any) -> dict[str, Any]:
    """Return the gateway settings overrides of TLS (and mutual TLS)."""
    values: dict[str, Any] = {
        "gateway_tls_cert_file": str(pki.server.cert_file),
        "gateway_tls_key_file": str(pki.server.key_file),
    }
    if mutual:
        values["gateway_tls_client_ca_file"] = str(pki.charger_ca.cert_file)
    return values | overrides


@pytest.fixture
async def mtls_gateway(gateways: Gateways, pki: Pki) -> Settings:
    return await gateways.start(**tls_settings(pki))


def wss_url(settings: Settings, charger_id: str) -> str:
    return "wss" + url(settings, charger_id).removeprefix("ws")


@contextlib.asynccontextmanager
async def tls_charger(
    settings: Settings, charger_id: str, context: ssl.SSLContext, **kwargs: Any
) -> AsyncIterator[Charger]:
    """Connect a 1.6 charge point over TLS, ready once a Heartbeat is answered."""
    async with websockets.connect(
        wss_url(settings, charger_id), ssl=context, subprotocols=OCPP16, **kwargs
    ) as ws:
        charge_point = Charger(charger_id, ws)
        serving = asyncio.create_task(charge_point.start())
        try:
            await charge_point.call(call.Heartbeat())
            yield charge_point
        finally:
            serving.cancel()
            with contextlib.suppress(
                asyncio.CancelledError, websockets.ConnectionClosed
            ):
                await serving


# -- profiles 2 and 3 ------------------------------------------------------------


@pytest.mark.parametrize("mutual", [False, True], ids=["tls", "tls-with-client-ca"])
async def test_a_charger_without_a_client_certificate_connects_as_profile_2(
    gateways: Gateways, sg: ProfileSG, pki: Pki, mutual: bool
) -> None:
    gateway = await gateways.start(**tls_settings(pki, mutual=mutual))

    context = client_context(pki.server_ca)
    async with tls_charger(
        gateway, "CP-1", context, additional_headers=basic("CP-1", "pw")
    ):
        pass  # connected: its Heartbeat was answered over TLS

    asked = await sg.next_request("connecting")
    assert asked.charger_id == "CP-1"
    assert isinstance(asked.event, ChargerConnecting)
    assert asked.event.security_profile == 2
    assert asked.event.password == "pw"


async def test_a_verified_client_certificate_of_the_charger_proves_profile_3(
    mtls_gateway: Settings, sg: ProfileSG, pki: Pki
) -> None:
    context = client_context(pki.server_ca, pki.charger_ca.client("sp3-1"))

    async with tls_charger(mtls_gateway, "sp3-1", context):
        pass  # connected although sp3-* needs profile 3

    asked = await sg.next_request("connecting")
    assert asked.charger_id == "sp3-1"
    assert isinstance(asked.event, ChargerConnecting)
    assert asked.event.security_profile == 3
    assert asked.event.password is None


# -- identity and required profile -----------------------------------------------


async def refused(
    settings: Settings, charger_id: str, context: ssl.SSLContext | None
) -> Response:
    """Return the HTTP refusal of a charger's handshake (TLS when ``context``)."""
    target = (
        url(settings, charger_id) if context is None else wss_url(settings, charger_id)
    )
    with pytest.raises(InvalidStatus) as refusal:
        async with asyncio.timeout(WAIT_S):
            await websockets.connect(target, ssl=context, subprotocols=OCPP16)
    return refusal.value.response


async def test_a_client_certificate_of_another_charger_is_forbidden(
    mtls_gateway: Settings,
    sg: ProfileSG,
    pki: Pki,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="spr_gateway")
    context = client_context(pki.server_ca, pki.charger_ca.client("CP-2"))

    response = await refused(mtls_gateway, "CP-1", context)

    assert response.status_code == 403
    assert response.body == b"Forbidden\n"
    assert "WWW-Authenticate" not in response.headers
    assert sg.requests.empty()  # refused before the SG is asked
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert warnings[0].name == "spr_gateway.tls"
    assert getattr(warnings[0], "charger_id", None) == "CP-1"
    assert "commonName=CP-2" in warnings[0].getMessage()


@pytest.mark.parametrize(
    ("charger_id", "mutual", "proven"),
    [("sp2-1", None, 1), ("sp3-1", False, 2), ("sp3-1", True, 2)],
    ids=["plain-below-2", "tls-below-3", "tls-with-client-ca-below-3"],
)
async def test_a_connection_below_the_chargers_security_profile_is_forbidden(
    gateways: Gateways,
    sg: ProfileSG,
    pki: Pki,
    charger_id: str,
    mutual: bool | None,
    proven: int,
) -> None:
    if mutual is None:
        gateway = await gateways.start()
        context = None
    else:
        gateway = await gateways.start(**tls_settings(pki, mutual=mutual))
        context = client_context(pki.server_ca)

    response = await refused(gateway, charger_id, context)

    assert response.status_code == 403
    assert response.body == b"Forbidden\n"
    assert "WWW-Authenticate" not in response.headers
    asked = await sg.next_request("connecting")
    assert isinstance(asked.event, ChargerConnecting)
    assert asked.event.security_profile == proven


# -- TLS failures ------------------------------------------------------------------


async def failed_handshake(
    settings: Settings, charger_id: str, context: ssl.SSLContext
) -> Exception:
    """Return what a charger's ``wss://`` connection attempt failed with."""
    with pytest.raises(Exception) as failed:
        async with asyncio.timeout(WAIT_S):
            await websockets.connect(
                wss_url(settings, charger_id), ssl=context, subprotocols=OCPP16
            )
    assert isinstance(failed.value, Exception)
    return failed.value


def tls_logs(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [
        (r.levelno, r.getMessage())
        for r in caplog.records
        if r.name == "spr_gateway.tls"
    ]


# The gateway drops a failed TLS handshake without an alert: a TLS 1.2
# charger sees its handshake reset, a TLS 1.3 one has finished its side of the
# handshake and sees the connection close before any HTTP response.
CLIENT_VERSIONS = pytest.mark.parametrize(
    ("version", "client_error"),
    [
        (ssl.TLSVersion.TLSv1_2, ConnectionResetError),
        (ssl.TLSVersion.TLSv1_3, InvalidMessage),
    ],
    ids=["1.2", "1.3"],
)


@CLIENT_VERSIONS
@pytest.mark.parametrize(
    ("flaw", "verify_message"),
    [
        ("expired", "certificate has expired"),
        ("wrong-ca", "unable to get local issuer certificate"),
        ("server-certificate", "unsuitable certificate purpose"),
    ],
)
async def test_a_client_certificate_that_does_not_verify_fails_the_tls_handshake(
    mtls_gateway: Settings,
    sg: ProfileSG,
    pki: Pki,
    caplog: pytest.LogCaptureFixture,
    version: ssl.TLSVersion,
    client_error: type[Exception],
    flaw: str,
    verify_message: str,
) -> None:
    caplog.set_level(logging.INFO, logger="spr_gateway")
    certificates = {
        "expired": lambda: pki.charger_ca.client("CP-1", expired=True),
        "wrong-ca": lambda: pki.rogue_ca.client("CP-1"),
        "server-certificate": lambda: pki.charger_ca.issue(
            "CP-1", usage=ExtendedKeyUsageOID.SERVER_AUTH
        ),
    }
    context = client_context(pki.server_ca, certificates[flaw](), max_version=version)

    error = await failed_handshake(mtls_gateway, "CP-1", context)

    assert type(error) is client_error, repr(error)
    assert tls_logs(caplog) == [
        (
            logging.WARNING,
            f"client certificate refused at the TLS handshake: {verify_message}",
        )
    ]
    assert sg.requests.empty()


async def test_a_plain_websocket_on_the_tls_port_fails(
    mtls_gateway: Settings, sg: ProfileSG, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="spr_gateway")

    with pytest.raises(InvalidMessage):
        async with asyncio.timeout(WAIT_S):
            await websockets.connect(url(mtls_gateway, "CP-1"), subprotocols=OCPP16)

    assert tls_logs(caplog) == [(logging.INFO, "TLS handshake failed: HTTP_REQUEST")]
    assert sg.requests.empty()


async def test_the_minimum_tls_version_refuses_older_chargers(
    gateways: Gateways, sg: ProfileSG, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    gateway = await gateways.start(**tls_settings(pki, gateway_tls_min_version="1.3"))
    caplog.set_level(logging.INFO, logger="spr_gateway")
    old = client_context(pki.server_ca, max_version=ssl.TLSVersion.TLSv1_2)

    error = await failed_handshake(gateway, "CP-1", old)
    async with tls_charger(gateway, "CP-1", client_context(pki.server_ca)) as cp:
        assert cp.ws.transport.get_extra_info("ssl_object").version() == "TLSv1.3"

    assert type(error) is ConnectionResetError, repr(error)
    assert tls_logs(caplog) == [
        (logging.INFO, "TLS handshake failed: UNSUPPORTED_PROTOCOL")
    ]


async def negotiated_cipher(settings: Settings, context: ssl.SSLContext) -> str | None:
    """Return the TLS suite of a bare TLS connection, ``None`` if reset."""
    try:
        async with asyncio.timeout(WAIT_S):
            _, writer = await asyncio.open_connection(
                "127.0.0.1", settings.gateway_port, ssl=context
            )
    except ConnectionResetError:
        return None
    cipher = writer.get_extra_info("cipher")
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return str(cipher[0])


# The TLS 1.2 suites OCPP requires of a CSMS, by server key type, and suites
# a sane server refuses (CBC, no AEAD).
@pytest.mark.parametrize(
    ("key_type", "required", "refused_suite"),
    [
        (
            "ec",
            ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384"],
            "ECDHE-ECDSA-AES128-SHA256",
        ),
        (
            "rsa",
            ["AES128-GCM-SHA256", "AES256-GCM-SHA384", "ECDHE-RSA-AES128-GCM-SHA256"],
            "AES128-SHA256",
        ),
    ],
)
async def test_the_gateway_offers_the_ocpp_cipher_suites_and_no_weak_ones(
    gateways: Gateways,
    pki: Pki,
    caplog: pytest.LogCaptureFixture,
    key_type: Literal["ec", "rsa"],
    required: list[str],
    refused_suite: str,
) -> None:
    server = pki.server_ca.server(key_type=key_type)
    gateway = await gateways.start(
        gateway_tls_cert_file=str(server.cert_file),
        gateway_tls_key_file=str(server.key_file),
    )
    caplog.set_level(logging.INFO, logger="spr_gateway")

    def tls12(suite: str) -> ssl.SSLContext:
        return client_context(
            pki.server_ca, max_version=ssl.TLSVersion.TLSv1_2, ciphers=suite
        )

    for suite in required:
        assert await negotiated_cipher(gateway, tls12(suite)) == suite
    assert await negotiated_cipher(gateway, tls12(refused_suite)) is None
    assert tls_logs(caplog) == [
        (logging.INFO, "TLS handshake failed: NO_SHARED_CIPHER")
    ]


NO_TLS = {
    "gateway_tls_cert_file": "",
    "gateway_tls_key_file": "",
    "gateway_tls_client_ca_file": "",
}


# -- start-up --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {"key": "server-key"},
            "MOOVOLT_GATEWAY_TLS_KEY_FILE is set without MOOVOLT_GATEWAY_TLS_CERT_FILE",
        ),
        (
            {"cert": "server-cert"},
            "MOOVOLT_GATEWAY_TLS_CERT_FILE is set without MOOVOLT_GATEWAY_TLS_KEY_FILE",
        ),
        (
            {"client_ca": "charger-ca"},
            "MOOVOLT_GATEWAY_TLS_CLIENT_CA_FILE needs MOOVOLT_GATEWAY_TLS_CERT_FILE",
        ),
        (
            {"cert": "missing", "key": "server-key"},
            "MOOVOLT_GATEWAY_TLS_CERT_FILE=.* cannot be read: No such file",
        ),
        (
            {"cert": "server-cert", "key": "server-key", "client_ca": "directory"},
            "MOOVOLT_GATEWAY_TLS_CLIENT_CA_FILE=.* cannot be read: Is a directory",
        ),
        (
            {"cert": "server-cert", "key": "other-key"},
            "are not a PEM certificate and its private key",
        ),
        (
            {"cert": "server-cert", "key": "encrypted-key"},
            "MOOVOLT_GATEWAY_TLS_KEY_FILE=.* is encrypted",
        ),
        (
            {"cert": "server-cert", "key": "server-key", "client_ca": "server-key"},
            "MOOVOLT_GATEWAY_TLS_CLIENT_CA_FILE=.* holds no usable PEM CA",
        ),
    ],
    ids=[
        "key-without-cert",
        "cert-without-key",
        "ca-without-cert",
        "missing-cert",
        "unreadable-ca",
        "mismatched-key",
        "encrypted-key",
        "ca-not-a-certificate",
    ],
)
def test_bad_tls_settings_are_refused_at_start_up(
    tmp_path: Path, pki: Pki, files: dict[str, str], message: str
) -> None:
    encrypted = pki.server_ca.issue(
        "localhost", usage=ExtendedKeyUsageOID.SERVER_AUTH, password=b"secret"
    )
    paths = {
        "server-cert": pki.server.cert_file,
        "server-key": pki.server.key_file,
        "other-key": pki.server_ca.server().key_file,
        "encrypted-key": encrypted.key_file,
        "charger-ca": pki.charger_ca.cert_file,
        "missing": tmp_path / "missing.pem",
        "directory": tmp_path,
    }
    settings = Settings.model_validate(
        NO_TLS
        | {f"gateway_tls_{role}_file": str(paths[name]) for role, name in files.items()}
    )

    with pytest.raises(tls.TlsSettingsError, match=message):
        tls.server_context(settings)


def test_without_tls_settings_the_gateway_serves_plain_websocket() -> None:
    assert tls.server_context(Settings.model_validate(NO_TLS)) is None


async def test_the_gateway_does_not_start_with_bad_tls_settings(pki: Pki) -> None:
    settings = Settings.model_validate(
        NO_TLS | {"gateway_tls_key_file": str(pki.server.key_file)}
    )

    with pytest.raises(tls.TlsSettingsError, match="is set without"):
        async with asyncio.timeout(WAIT_S):
            await run_gateway(settings)
