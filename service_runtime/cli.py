"""The command line shared by both services: `serve` (the default) and `migrate`.

Start-up failures a user can fix (configuration, an unreachable database, a port in use, a
migration conflict) are printed as one line naming the cause, with exit status 2; nothing
else is printed for them.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

import uvloop

from service_runtime import logs
from service_runtime.config import ConfigError, Env, ServerSettings
from service_runtime.database import DatabaseUnavailable
from service_runtime.migrations import MigrationError
from service_runtime.serve import ListenError

log = logging.getLogger(__name__)

T = TypeVar("T")


class ServiceSettings(Protocol):
    """What the command line needs of a service's settings."""

    @property
    def server(self) -> ServerSettings: ...


S = TypeVar("S", bound=ServiceSettings)

_STARTUP_ERRORS = (ConfigError, DatabaseUnavailable, ListenError, MigrationError)


def _run(main: Coroutine[Any, Any, T], env: Env) -> T:
    """Runs `main` on uvloop (EVENT_LOOP=uvloop, the default) or asyncio's own loop."""
    if env.flag("GC_TUNING", True):
        # Everything imported so far lives as long as the process: keep it out of the cyclic
        # collector's way (gc.freeze), and collect the young generation less often, so that
        # a service under load spends less time in (and is paused less often by) collections.
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 20, 20)
    loop = env.choice("EVENT_LOOP", "uvloop", ("uvloop", "asyncio"))
    factory = uvloop.new_event_loop if loop == "uvloop" else None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def run_service(
    name: str,
    argv: list[str],
    load_settings: Callable[[Env], S],
    serve: Callable[[S], Coroutine[Any, Any, None]],
    migrate: Callable[[S], Coroutine[Any, Any, int]],
) -> int:
    parser = argparse.ArgumentParser(
        prog=name, description=f"TicketFlow {name}. Configured by environment variables (see README.md)."
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="serve",
        choices=["serve", "migrate"],
        help="serve (default) or apply database migrations and exit",
    )
    args = parser.parse_args(argv)
    try:
        env = Env.load()
        settings = load_settings(env)
        logs.configure(settings.server.log_level, name)
        if args.command == "migrate":
            applied = _run(migrate(settings), env)
            print(f"{name}: {applied} migration(s) applied", file=sys.stderr)
        else:
            _run(serve(settings), env)
    except _STARTUP_ERRORS as error:
        print(f"{name}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
