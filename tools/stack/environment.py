"""The environment of a service process started by the stack, put together in one place.

A variable every service process needs (a signing key's path, a TLS certificate's) is added
here, or given to all of them through `StackConfig.env`; nothing else builds a service's
environment.

Identity and TLS are on by default with the dev credentials (`tools.devkeys.service_env`, from
`StackConfig.dev_home`): the `AUTH_*` settings, the event service's gRPC server certificate
and client CA, the booking service's channel CA and client certificate. A caller with its own
(a real identity provider's JWKS URL, its own certificates) sets them in the inherited
environment, `StackConfig.env` or `StackConfig.service_env`: each group it touches, for any
service, is then left entirely to it, so that dev and real settings never mix.
"""

from __future__ import annotations

from collections.abc import Mapping

from tools.devkeys import service_env as dev_service_env
from tools.stack.config import StackConfig
from tools.stack.database import DatabaseServer
from tools.stack.services import BOOKING, ServiceSpec, client_host

# Settings that only work together, by variable prefix. Both TLS sides form one group: a dev
# client certificate cannot talk to a server with the operator's, nor the other way round.
DEV_GROUPS = {
    "identity": ("AUTH_",),
    "tls": ("GRPC_TLS_", "EVENT_SERVICE_TLS_"),
}


def service_environment(
    spec: ServiceSpec, config: StackConfig, database: DatabaseServer, overrides: Mapping[str, str]
) -> dict[str, str]:
    """From lowest to highest precedence: the inherited environment, the stack's wiring
    (database, address, ports, the event service's address, the dev credentials of each group
    the caller does not set), `config.env` (every service), `config.service_env[name]` (this
    service), `overrides` (this start only: fault hooks)."""
    http_port, grpc_port = config.ports.of(spec.name)
    env = {
        **config.environ,
        **database.service_env(config.database(spec.name)),
        "SERVER_HOST": config.host,
        "HTTP_PORT": str(http_port),
        "GRPC_PORT": str(grpc_port),
        # The stack's output is line by line; so should theirs be.
        "PYTHONUNBUFFERED": "1",
        **dev_credentials(spec, config),
    }
    if spec == BOOKING:
        env["EVENT_SERVICE_ADDR"] = f"{client_host(config.host)}:{config.ports.event_grpc}"
    # Leave a service time to finish its requests within the stack's stop timeout (unless the
    # inherited environment says otherwise).
    env.setdefault("SHUTDOWN_GRACE_SECONDS", f"{max(1.0, config.stop_timeout - 3):g}")
    return {**env, **config.env, **config.service_env.get(spec.name, {}), **overrides}


def callers_groups(config: StackConfig) -> set[str]:
    """The groups of DEV_GROUPS the caller sets itself, for any service."""
    given = {*config.environ, *config.env, *(name for env in config.service_env.values() for name in env)}
    return {group for group, prefixes in DEV_GROUPS.items() if any(name.startswith(prefixes) for name in given)}


def dev_credentials(spec: ServiceSpec, config: StackConfig) -> dict[str, str]:
    """The dev credentials' variables for this service, but for the groups the caller sets;
    creates the credentials in `config.dev_home` the first time they are needed."""
    theirs = callers_groups(config)
    if theirs == set(DEV_GROUPS):
        return {}
    skipped = tuple(prefix for group in theirs for prefix in DEV_GROUPS[group])
    every = dev_service_env(f"{spec.name}_service", config.dev_home)
    return {name: value for name, value in every.items() if not name.startswith(skipped)}
