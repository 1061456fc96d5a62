"""The environment of a service process started by the stack, put together in one place.

A variable every service process needs (a signing key's path, a TLS certificate's) is added
here, or given to all of them through `StackConfig.env`; nothing else builds a service's
environment.
"""

from __future__ import annotations

from collections.abc import Mapping

from tools.stack.config import StackConfig
from tools.stack.database import DatabaseServer
from tools.stack.services import BOOKING, ServiceSpec, client_host


def service_environment(
    spec: ServiceSpec, config: StackConfig, database: DatabaseServer, overrides: Mapping[str, str]
) -> dict[str, str]:
    """From lowest to highest precedence: the inherited environment, the stack's wiring
    (database, address, ports, the event service's address), `config.env` (every service),
    `config.service_env[name]` (this service), `overrides` (this start only: fault hooks)."""
    http_port, grpc_port = config.ports.of(spec.name)
    env = {
        **config.environ,
        **database.service_env(config.database(spec.name)),
        "SERVER_HOST": config.host,
        "HTTP_PORT": str(http_port),
        "GRPC_PORT": str(grpc_port),
        # The stack's output is line by line; so should theirs be.
        "PYTHONUNBUFFERED": "1",
    }
    if spec == BOOKING:
        env["EVENT_SERVICE_ADDR"] = f"{client_host(config.host)}:{config.ports.event_grpc}"
    # Leave a service time to finish its requests within the stack's stop timeout (unless the
    # inherited environment says otherwise).
    env.setdefault("SHUTDOWN_GRACE_SECONDS", f"{max(1.0, config.stop_timeout - 3):g}")
    return {**env, **config.env, **config.service_env.get(spec.name, {}), **overrides}
