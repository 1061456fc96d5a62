"""Checks, before anything starts, that the ports the stack will listen on are free."""

from __future__ import annotations

import errno
import socket
from collections.abc import Mapping


class PortInUse(RuntimeError):
    """A port the stack needs is taken; the message is one line naming it and the way out."""


def check_free(host: str, ports: Mapping[str, int]) -> None:
    """Raises PortInUse for the first of `ports` (name -> port) that cannot be listened on."""
    for name, port in ports.items():
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            # The same option the services set: a port left in TIME_WAIT by a previous run is free.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError as error:
                why = "is already in use" if error.errno == errno.EADDRINUSE else f"cannot be used ({error.strerror})"
                raise PortInUse(
                    f"port {port} ({name}) on {host} {why}: stop what listens there, "
                    "or choose other ports (--port-offset N, or --event-http-port and the like)"
                ) from None
