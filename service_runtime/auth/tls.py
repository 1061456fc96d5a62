"""Mutual TLS on the gRPC channel between the services.

Server side (the event service's gRPC port):

| Variable | Default | Meaning |
|---|---|---|
| `GRPC_TLS_CERT_FILE` | | PEM certificate chain of the gRPC server; with `GRPC_TLS_KEY_FILE` turns TLS on |
| `GRPC_TLS_KEY_FILE` | | PEM private key of that certificate |
| `GRPC_TLS_CLIENT_CA_FILE` | | PEM CA bundle; when set, every client must present a certificate it issued |

Client side (the booking service's channel to the event service):

| Variable | Default | Meaning |
|---|---|---|
| `EVENT_SERVICE_TLS_CA_FILE` | | PEM CA bundle the event service's certificate must chain to; turns TLS on |
| `EVENT_SERVICE_TLS_CERT_FILE` | | PEM client certificate chain presented to the event service |
| `EVENT_SERVICE_TLS_KEY_FILE` | | PEM private key of that certificate |
| `EVENT_SERVICE_TLS_SERVER_NAME` | the address's host | the name the server certificate must carry |

Files are read and checked once, at start-up (the server still answers if one is renewed on
disk; restart to pick it up). `peer_identities(context)` names the caller of a call on a
mutual-TLS port: the DNS names of its certificate's subjectAltName and its common name, as
verified by gRPC against `GRPC_TLS_CLIENT_CA_FILE`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from service_runtime.config import ConfigError, Env

_DNS_NAME = re.compile(r"[A-Za-z0-9*]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


@dataclass(frozen=True)
class ServerTls:
    certificate_chain: bytes
    private_key: bytes = field(repr=False)
    client_ca: bytes | None

    @classmethod
    def from_env(cls, env: Env) -> ServerTls | None:
        """None when `GRPC_TLS_*` are all unset (a plaintext port)."""
        cert, key = env.text("GRPC_TLS_CERT_FILE", ""), env.text("GRPC_TLS_KEY_FILE", "")
        client_ca = env.text("GRPC_TLS_CLIENT_CA_FILE", "")
        if not (cert or key or client_ca):
            return None
        if not (cert and key):
            missing = "GRPC_TLS_KEY_FILE" if cert else "GRPC_TLS_CERT_FILE"
            raise ConfigError(f"{missing} is required when any GRPC_TLS_* variable is set")
        chain, private_key = _key_pair("GRPC_TLS_CERT_FILE", cert, "GRPC_TLS_KEY_FILE", key)
        return cls(chain, private_key, _ca_bundle("GRPC_TLS_CLIENT_CA_FILE", client_ca) if client_ca else None)

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.private_key, self.certificate_chain)],
            root_certificates=self.client_ca,
            require_client_auth=self.client_ca is not None,
        )


@dataclass(frozen=True)
class ChannelTls:
    root_certificates: bytes
    certificate_chain: bytes | None
    private_key: bytes | None = field(repr=False)
    server_name: str | None

    @classmethod
    def from_env(cls, env: Env) -> ChannelTls | None:
        """None when `EVENT_SERVICE_TLS_*` are all unset (a plaintext channel)."""
        ca = env.text("EVENT_SERVICE_TLS_CA_FILE", "")
        cert, key = env.text("EVENT_SERVICE_TLS_CERT_FILE", ""), env.text("EVENT_SERVICE_TLS_KEY_FILE", "")
        server_name = env.text("EVENT_SERVICE_TLS_SERVER_NAME", "", max_length=253)
        if not (ca or cert or key or server_name):
            return None
        if not ca:
            raise ConfigError("EVENT_SERVICE_TLS_CA_FILE is required when any EVENT_SERVICE_TLS_* variable is set")
        if bool(cert) != bool(key):
            given, missing = ("CERT", "KEY") if cert else ("KEY", "CERT")
            raise ConfigError(f"EVENT_SERVICE_TLS_{missing}_FILE is required with EVENT_SERVICE_TLS_{given}_FILE")
        if server_name and not _DNS_NAME.fullmatch(server_name):
            raise ConfigError(f"EVENT_SERVICE_TLS_SERVER_NAME: {server_name!r} is not a host name")
        chain, private_key = (
            _key_pair("EVENT_SERVICE_TLS_CERT_FILE", cert, "EVENT_SERVICE_TLS_KEY_FILE", key) if cert else (None, None)
        )
        return cls(_ca_bundle("EVENT_SERVICE_TLS_CA_FILE", ca), chain, private_key, server_name or None)

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.root_certificates,
            private_key=self.private_key,
            certificate_chain=self.certificate_chain,
        )

    def options(self) -> list[tuple[str, str]]:
        """Channel options: the name checked in the server certificate, when overridden."""
        return [("grpc.ssl_target_name_override", self.server_name)] if self.server_name else []


def peer_identities(context: grpc.aio.ServicerContext[Any, Any]) -> set[str]:
    """The verified client certificate's DNS subjectAltNames and common name; empty for a
    plaintext peer or one without a certificate."""
    auth = context.auth_context()
    if auth.get("transport_security_type") != [b"ssl"] or not auth.get("x509_pem_cert"):
        return set()
    # gRPC lists DNS SANs under `peer_dns`; `x509_subject_alternative_name` mixes in URIs,
    # e-mail addresses and IPs, which are not service names.
    names = [*auth.get("peer_dns", ()), *auth.get("x509_common_name", ())]
    return {name.decode("utf-8", "replace") for name in names}


def _read(variable: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise ConfigError(f"{variable}: cannot read {path}: {error.strerror or error}") from None


def _certificates(variable: str, path: str) -> tuple[bytes, list[x509.Certificate]]:
    """The file's bytes and the certificates in it (at least one)."""
    data = _read(variable, path)
    try:
        return data, x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ConfigError(f"{variable}: {path} holds no PEM certificate") from None


def _ca_bundle(variable: str, path: str) -> bytes:
    return _certificates(variable, path)[0]


def _key_pair(cert_variable: str, cert_path: str, key_variable: str, key_path: str) -> tuple[bytes, bytes]:
    """The certificate chain and its private key, checked to belong together."""
    chain, certificates = _certificates(cert_variable, cert_path)
    key_pem = _read(key_variable, key_path)
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise ConfigError(f"{key_variable}: {key_path} holds no unencrypted PEM private key") from None
    if _spki(key.public_key()) != _spki(certificates[0].public_key()):
        raise ConfigError(f"{key_variable}: {key_path} is not the key of the certificate in {cert_variable}")
    return chain, key_pem


def _spki(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
