"""Certificates for TLS tests: a throwaway CA that issues PEM files.

Keys are elliptic-curve (P-256) unless a test asks for RSA; every file is
written under the test's own directory.
"""

import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KeyType = Literal["ec", "rsa"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Issued:
    """A certificate and its key, as PEM files."""

    cert_file: Path
    key_file: Path


def _new_key(key_type: KeyType) -> PrivateKey:
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "moovolt tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_key(key: PrivateKey, path: Path, password: bytes | None = None) -> None:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            encryption,
        )
    )


class Authority:
    """A self-signed CA whose certificate is ``cert_file``.

    Args:
        directory: where the CA and everything it issues are written.
        name: the CA's CommonName, also the stem of its files.
    """

    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        self.key = _new_key("ec")
        now = datetime.now(UTC)
        self.subject = _name(name)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(self.subject)
            .issuer_name(self.subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - ONE_DAY)
            .not_valid_after(now + 30 * ONE_DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )
        self.cert_file = directory / f"{name}.pem"
        self.cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))

    def server(self, *, key_type: KeyType = "ec") -> Issued:
        """Issue a server certificate for ``127.0.0.1`` and ``localhost``."""
        alt_names = x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))]
        )
        return self.issue(
            "localhost",
            usage=ExtendedKeyUsageOID.SERVER_AUTH,
            key_type=key_type,
            alt_names=alt_names,
        )

    def client(self, charger_id: str, *, expired: bool = False) -> Issued:
        """Issue a charger's client certificate, CommonName ``charger_id``."""
        return self.issue(
            charger_id, usage=ExtendedKeyUsageOID.CLIENT_AUTH, expired=expired
        )

    def issue(
        self,
        common_name: str,
        *,
        usage: x509.ObjectIdentifier,
        key_type: KeyType = "ec",
        expired: bool = False,
        alt_names: x509.SubjectAlternativeName | None = None,
        password: bytes | None = None,
    ) -> Issued:
        """Issue a leaf certificate with one extended key usage.

        Args:
            common_name: the subject's CommonName.
            usage: the extended key usage (server or client authentication).
            key_type: the leaf key's algorithm.
            expired: whether the certificate's validity ended yesterday.
            alt_names: subject alternative names, if any.
            password: encrypt the key file with this password.
        """
        key = _new_key(key_type)
        now = datetime.now(UTC)
        end = now - ONE_DAY if expired else now + 30 * ONE_DAY
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(end - 30 * ONE_DAY)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if alt_names is not None:
            builder = builder.add_extension(alt_names, critical=False)
        certificate = builder.sign(self.key, hashes.SHA256())

        stem = f"{common_name}-{certificate.serial_number:x}"
        issued = Issued(self.directory / f"{stem}.pem", self.directory / f"{stem}.key")
        issued.cert_file.write_bytes(
            certificate.public_bytes(serialization.Encoding.PEM)
        )
        _write_key(key, issued.key_file, password)
        return issued


def client_context(
    server_ca: Authority,
    certificate: Issued | None = None,
    *,
    max_version: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED,
    ciphers: str | None = None,
) -> ssl.SSLContext:
    """Return a charger's TLS context that trusts only ``server_ca``.

    Args:
        server_ca: the CA of the gateway's server certificate.
        certificate: the charger's client certificate, if it has one.
        max_version: the newest TLS version the charger offers.
        ciphers: the TLS 1.2 suites the charger offers (OpenSSL names).
    """
    context = ssl.create_default_context(cafile=str(server_ca.cert_file))
    context.maximum_version = max_version
    if ciphers is not None:
        context.set_ciphers(ciphers)
    if certificate is not None:
        context.load_cert_chain(certificate.cert_file, certificate.key_file)
    return context
