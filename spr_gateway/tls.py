"""TLS at the gateway: the server's context and what a connection proves.

OCPP numbers three security profiles: 1 is a plain WebSocket with HTTP Basic
auth, 2 adds TLS with a server certificate, 3 is TLS with a client certificate
that the gateway verifies against its own CA file and binds to the charge
point id through the certificate subject's CommonName.
"""

import logging
import ssl
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import cast

from moovolt.settings import Settings
from spr_gateway.handshake import HandshakeRefused

logger = logging.getLogger(__name__)

PLAIN = 1
TLS = 2
MUTUAL_TLS = 3

# TLS 1.2 suites, the server's preference first: forward-secret AEAD suites,
# then the two TLS_RSA ones that OCPP requires a CSMS to offer for chargers
# with RSA-only stacks. TLS 1.3 keeps OpenSSL's defaults, all AEAD.
CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
        "AES128-GCM-SHA256",
        "AES256-GCM-SHA384",
    )
)

MIN_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}

# A certificate subject as ssl.SSLObject.getpeercert() decodes it.
Subject = tuple[tuple[tuple[str, str], ...], ...]


class TlsSettingsError(ValueError):
    """The gateway's TLS settings cannot work; the message says which and why."""


def server_context(settings: Settings) -> ssl.SSLContext | None:
    """Return the gateway's server TLS context, or ``None`` for plain WebSocket.

    TLS is on when both the certificate and the key file are set. A client CA
    file makes the gateway ask for a client certificate: one that does not
    verify against that file fails the TLS handshake, none at all is profile 2.
    Only the CA file is trusted, never the system's CA store.

    Args:
        settings: the gateway's settings (``MOOVOLT_GATEWAY_TLS_*``).

    Raises:
        TlsSettingsError: a key or client CA without a certificate, a
            certificate without a key, or a file that cannot be read or used.
    """
    cert = settings.gateway_tls_cert_file
    key = settings.gateway_tls_key_file
    client_ca = settings.gateway_tls_client_ca_file
    if not cert and not key:
        if client_ca:
            raise TlsSettingsError(
                f"{_variable('gateway_tls_client_ca_file')} needs "
                f"{_variable('gateway_tls_cert_file')} and "
                f"{_variable('gateway_tls_key_file')}: mutual TLS is TLS first"
            )
        return None
    if not cert:
        raise TlsSettingsError(
            f"{_variable('gateway_tls_key_file')} is set without "
            f"{_variable('gateway_tls_cert_file')}"
        )
    if not key:
        raise TlsSettingsError(
            f"{_variable('gateway_tls_cert_file')} is set without "
            f"{_variable('gateway_tls_key_file')}"
        )
    for field, path in (
        ("gateway_tls_cert_file", cert),
        ("gateway_tls_key_file", key),
        ("gateway_tls_client_ca_file", client_ca),
    ):
        if path:
            _check_readable(field, path)

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = MIN_VERSIONS[settings.gateway_tls_min_version]
    context.set_ciphers(CIPHERS)
    context.options |= ssl.OP_NO_RENEGOTIATION
    try:
        context.load_cert_chain(cert, key, password=_refuse_password(key))
    except ssl.SSLError as exc:
        raise TlsSettingsError(
            f"{_variable('gateway_tls_cert_file')}={cert} and "
            f"{_variable('gateway_tls_key_file')}={key} are not a PEM "
            f"certificate and its private key: {exc.reason or exc}"
        ) from None

    if client_ca:
        try:
            context.load_verify_locations(cafile=client_ca)
        except ssl.SSLError as exc:
            raise TlsSettingsError(
                f"{_variable('gateway_tls_client_ca_file')}={client_ca} holds "
                f"no usable PEM CA certificate: {exc.reason or exc}"
            ) from None
        # The anchors are exactly the configured certificates, a sub-CA too.
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        context.verify_mode = ssl.CERT_OPTIONAL
    context.sslobject_class = _LoggedHandshake

    logger.info(
        "TLS on (minimum %s): certificate %s, client certificates %s",
        settings.gateway_tls_min_version,
        cert,
        f"from the CAs in {client_ca}" if client_ca else "not asked for",
    )
    return context


class _LoggedHandshake(ssl.SSLObject):
    """The TLS state of one connection, logging why its handshake failed.

    The event loop reports a failed handshake only in debug mode and the
    connection never reaches the WebSocket server, so this is the one place
    that sees it. The peer's address is not known here.
    """

    def do_handshake(self) -> None:
        try:
            super().do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise
        except ssl.SSLCertVerificationError as exc:
            logger.warning(
                "client certificate refused at the TLS handshake: %s",
                exc.verify_message,
            )
            raise
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
            # The peer left mid-handshake: a port probe or a charger giving up.
            raise
        except ssl.SSLError as exc:
            logger.info("TLS handshake failed: %s", exc.reason or exc)
            raise


def proven_profile(ssl_object: ssl.SSLObject | None, charger_id: str) -> int:
    """Return the security profile a connection proves for ``charger_id``.

    Args:
        ssl_object: the connection's TLS state, ``None`` for plain TCP.
        charger_id: the charge point id from the URL.

    Returns:
        ``PLAIN``, ``TLS``, or ``MUTUAL_TLS`` for a verified client
        certificate whose subject's only CommonName is ``charger_id``.

    Raises:
        HandshakeRefused: 403 for a client certificate of another identity.
    """
    if ssl_object is None:
        return PLAIN
    certificate = ssl_object.getpeercert()
    if not certificate:
        return TLS

    subject = cast(Subject, certificate.get("subject", ()))
    if common_names(subject) != [charger_id]:
        logger.warning(
            "client certificate for %s has subject %.200r; refused",
            charger_id,
            describe(subject),
            extra={"charger_id": charger_id},
        )
        raise HandshakeRefused(HTTPStatus.FORBIDDEN, "Forbidden\n")
    return MUTUAL_TLS


def common_names(subject: Subject) -> list[str]:
    """Return every CommonName of a decoded certificate subject, in order."""
    return [value for rdn in subject for name, value in rdn if name == "commonName"]


def describe(subject: Subject) -> str:
    """Return a decoded certificate subject as ``name=value`` pairs."""
    return ",".join(f"{name}={value}" for rdn in subject for name, value in rdn)


def _variable(field: str) -> str:
    return f"MOOVOLT_{field.upper()}"


def _check_readable(field: str, path: str) -> None:
    try:
        with Path(path).open("rb") as file:
            file.read(1)
    except OSError as exc:
        raise TlsSettingsError(
            f"{_variable(field)}={path} cannot be read: {exc.strerror or exc}"
        ) from None


def _refuse_password(key: str) -> Callable[[], str]:
    # Without a callback OpenSSL would prompt on the terminal and hang.
    def refuse() -> str:
        raise TlsSettingsError(
            f"{_variable('gateway_tls_key_file')}={key} is encrypted; "
            "give the gateway an unencrypted key file"
        )

    return refuse
