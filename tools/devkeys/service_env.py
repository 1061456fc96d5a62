"""The environment each service needs to run with the dev identity and certificates.

The dev stack's launcher adds `service_env(name)` to a service's environment: the `AUTH_*`
settings for both services, the gRPC server's certificate and client CA for the event service,
and the channel's CA and client certificate for the booking service.
"""

from __future__ import annotations

from pathlib import Path

from tools.devkeys.certificates import dev_tls
from tools.devkeys.identity import ADMIN_ROLE, dev_identity

SERVICES = ("event_service", "booking_service")


def service_env(service: str, home: Path | None = None) -> dict[str, str]:
    """`service` is `event_service` or `booking_service`; creates the credentials if needed."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}; expected one of {', '.join(SERVICES)}")
    identity, tls = dev_identity(home), dev_tls(home)
    env = {
        "AUTH_JWKS_FILE": str(identity.jwks_file),
        "AUTH_ISSUER": identity.issuer,
        "AUTH_AUDIENCE": identity.audience,
        "AUTH_ADMIN_ROLE": ADMIN_ROLE,
    }
    if service == "event_service":
        env |= {
            "GRPC_TLS_CERT_FILE": str(tls.event_cert),
            "GRPC_TLS_KEY_FILE": str(tls.event_key),
            "GRPC_TLS_CLIENT_CA_FILE": str(tls.ca_file),
        }
    else:
        env |= {
            "EVENT_SERVICE_TLS_CA_FILE": str(tls.ca_file),
            "EVENT_SERVICE_TLS_CERT_FILE": str(tls.booking_cert),
            "EVENT_SERVICE_TLS_KEY_FILE": str(tls.booking_key),
        }
    return env
