"""One process, one event loop: Hypercorn serving the Quart app beside a grpc.aio server.

`serve_service(...)` is a service process's life: bind both ports (a port in use is a one-line
`ListenError`), open the database pool, build the service around it, serve until SIGTERM or
SIGINT, stop. Shutdown is graceful: both servers stop accepting, calls and requests in flight
get `shutdown_grace` seconds to finish, then the service's own `stop` runs (drain background
work), the pool closes and the process exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config as HypercornConfig
from psycopg_pool import AsyncConnectionPool
from quart import Quart

from service_runtime.config import DatabaseSettings, ServerSettings
from service_runtime.database import open_pool
from service_runtime.grpc_server import GrpcServer

log = logging.getLogger(__name__)


class ListenError(OSError):
    """A port cannot be listened on; the message names the variable that sets it."""


def bind_tcp(host: str, port: int, variable: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise ListenError(f"{variable}: cannot listen on {host}:{port}: {error.strerror}") from None
    return sock


def grpc_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Servers:
    """Both servers of a service. Created first, so that a port in use stops start-up before
    anything else happens; `run(app)` serves until a signal or `stop()`."""

    def __init__(self, settings: ServerSettings, grpc_server: GrpcServer) -> None:
        self.settings = settings
        self._grpc = grpc_server
        self._stop = asyncio.Event()
        self._http_socket = bind_tcp(settings.host, settings.http_port, "HTTP_PORT")
        try:
            self.grpc_port = grpc_server.bind(grpc_address(settings.host, settings.grpc_port))
        except OSError as error:
            self._http_socket.close()
            raise ListenError(f"GRPC_PORT: {error}") from None
        self.http_port = int(self._http_socket.getsockname()[1])

    def stop(self) -> None:
        self._stop.set()

    def _hypercorn_config(self) -> HypercornConfig:
        config = HypercornConfig()
        # Hypercorn takes over the socket bound above (and closes it when done).
        config.bind = [f"fd://{self._http_socket.detach()}"]
        config.graceful_timeout = self.settings.shutdown_grace
        config.backlog = 1024
        config.keep_alive_timeout = 75
        config.accesslog = logging.getLogger("hypercorn.access") if self.settings.access_log else None
        config.errorlog = logging.getLogger("hypercorn.error")
        return config

    async def run(self, http_app: Quart, on_stop: Callable[[], Awaitable[None]] | None = None) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        await self._grpc.start()
        http = asyncio.create_task(
            hypercorn_serve(http_app, self._hypercorn_config(), shutdown_trigger=self._stop.wait)
        )
        log.info(
            "serving HTTP on %s:%d and gRPC on %s:%d",
            self.settings.host,
            self.http_port,
            self.settings.host,
            self.grpc_port,
        )
        stopping = asyncio.create_task(self._stop.wait())
        try:
            await asyncio.wait({http, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if http.done() and not self._stop.is_set():
                http.result()  # Hypercorn failed on its own: raise its error.
                raise RuntimeError("HTTP server stopped unexpectedly")
            log.info("stopping: finishing requests in flight (grace %.1f s)", self.settings.shutdown_grace)
            self._stop.set()
            await asyncio.gather(self._grpc.stop(self.settings.shutdown_grace), http)
        finally:
            stopping.cancel()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            if on_stop is not None:
                await on_stop()
        log.info("stopped")

    def _on_signal(self, sig: signal.Signals) -> None:
        if self._stop.is_set():
            return
        log.info("received %s", sig.name)
        self._stop.set()


@dataclass
class Started:
    """A service built around its pool: the app to serve, and what to do once serving stopped."""

    http_app: Quart
    stop: Callable[[], Awaitable[None]]


async def serve_service(
    name: str,
    server: ServerSettings,
    database: DatabaseSettings,
    grpc_services: Iterable[str],
    start: Callable[[AsyncConnectionPool, GrpcServer], Awaitable[Started]],
) -> None:
    """Binds, connects, `start(pool, grpc_server)`s the service, serves until a signal, stops."""
    grpc_server = GrpcServer(grpc_services)
    servers = Servers(server, grpc_server)
    pool = await open_pool(database, name=name)
    try:
        started = await start(pool, grpc_server)
    except BaseException:
        await pool.close()
        raise

    async def stop() -> None:
        try:
            await started.stop()
        finally:
            await pool.close()

    await servers.run(started.http_app, on_stop=stop)
