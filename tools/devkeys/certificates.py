"""A dev CA and the two services' certificates, for mutual TLS on the dev stack's gRPC channel.

The event service's server certificate names `localhost`, 127.0.0.1, ::1 and `event-service`
(the compose/Kubernetes service name); the booking service's client certificate names
`booking-service`, the identity the event service lets reserve and release seats. Keys are
ECDSA P-256. All files are remade together when one is missing, unreadable, not issued by the
CA, or expires within `RENEW_BEFORE`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tools.devkeys.home import PUBLIC, dev_home, locked, write_atomic, write_private_key

EVENT_SERVICE_NAMES = ("localhost", "event-service")
EVENT_SERVICE_ADDRESSES = ("127.0.0.1", "::1")
BOOKING_SERVICE_NAME = "booking-service"
CA_LIFETIME = dt.timedelta(days=3650)
LEAF_LIFETIME = dt.timedelta(days=825)
RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class DevTls:
    ca_file: Path
    event_cert: Path
    event_key: Path
    booking_cert: Path
    booking_key: Path


def dev_tls(home: Path | None = None) -> DevTls:
    """The dev CA and service certificates, created on first use and reused afterwards."""
    home = dev_home() if home is None else home
    tls_dir = home / "tls"
    files = DevTls(
        ca_file=tls_dir / "ca.pem",
        event_cert=tls_dir / "event-service.pem",
        event_key=tls_dir / "event-service-key.pem",
        booking_cert=tls_dir / "booking-service.pem",
        booking_key=tls_dir / "booking-service-key.pem",
    )
    with locked(home):
        tls_dir.mkdir(mode=0o700, exist_ok=True)
        if not _usable(files):
            _create(files, tls_dir / "ca-key.pem")
    return files


def _usable(files: DevTls) -> bool:
    renew_at = dt.datetime.now(dt.UTC) + RENEW_BEFORE
    try:
        ca = x509.load_pem_x509_certificate(files.ca_file.read_bytes())
        for cert_file, key_file in ((files.event_cert, files.event_key), (files.booking_cert, files.booking_key)):
            cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
            key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
            cert.verify_directly_issued_by(ca)
            if cert.not_valid_after_utc < renew_at or _spki(cert.public_key()) != _spki(key.public_key()):
                return False
    except (OSError, ValueError, TypeError, InvalidSignature):
        return False
    return ca.not_valid_after_utc >= renew_at


def _create(files: DevTls, ca_key_file: Path) -> None:
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)  # tolerate small clock differences
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "TicketFlow dev CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    event_names: list[x509.GeneralName] = [x509.DNSName(name) for name in EVENT_SERVICE_NAMES]
    event_names += [x509.IPAddress(ipaddress.ip_address(address)) for address in EVENT_SERVICE_ADDRESSES]
    leaves = (
        (files.event_cert, files.event_key, "event-service", event_names, ExtendedKeyUsageOID.SERVER_AUTH),
        (
            files.booking_cert,
            files.booking_key,
            BOOKING_SERVICE_NAME,
            [x509.DNSName(BOOKING_SERVICE_NAME)],
            ExtendedKeyUsageOID.CLIENT_AUTH,
        ),
    )
    write_private_key(ca_key_file, ca_key)
    write_atomic(files.ca_file, ca.public_bytes(serialization.Encoding.PEM), PUBLIC)
    for cert_file, key_file, common_name, names, usage in leaves:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + LEAF_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        write_private_key(key_file, key)
        write_atomic(cert_file, cert.public_bytes(serialization.Encoding.PEM), PUBLIC)


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _spki(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
