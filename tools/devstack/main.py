"""`./tools/bazel run //:ticketflow [-- options]`: the whole system, until Ctrl-C.

Exit status: 0 after a stop asked for by SIGINT or SIGTERM; 1 when a part failed to start or
exited on its own; 2 for a usage error or a port in use (one line, nothing started).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from types import FrameType

from tools.devstack import options as cli
from tools.devstack.demo import DemoEvent, banner, create_demo_events
from tools.embedded_postgres.server import PostgresError
from tools.stack.database import DatabaseServer, DatabaseSetupError
from tools.stack.ports import PortInUse, check_free
from tools.stack.services import Interrupted, StartupFailed
from tools.stack.stack import Stack
from tools.supervisor.output import PrefixedOutput


def main(argv: list[str]) -> int:
    options = cli.parse(argv)
    config = options.stack
    wanted = config.ports.named()
    if config.postgres_port:
        wanted["PostgreSQL"] = config.postgres_port
    try:
        check_free(config.host, wanted)
    except PortInUse as error:
        print(f"ticketflow: error: {error}", file=sys.stderr)
        return 2

    output = PrefixedOutput(sys.stdout)
    stop = threading.Event()

    def on_signal(number: int, frame: FrameType | None) -> None:
        name = signal.Signals(number).name
        output.line("stack", f"{name}: already stopping" if stop.is_set() else f"{name}: stopping everything")
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    stack = Stack(config, output, DatabaseServer.from_env() if options.external_db else None)
    started = time.monotonic()
    status = 0
    try:
        stack.start(stop.is_set)
        events = _demo_events(stack, output) if options.demo else []
        output.write(banner(stack, events, time.monotonic() - started))
        while not stop.wait(0.25):
            if failed := stack.exited():
                output.line(
                    "stack",
                    f"{failed.name}_service exited with {failed.exit_code()}: stopping everything",
                )
                status = 1
                break
            if stack.postgres_exited():
                output.line("stack", "PostgreSQL exited: stopping everything")
                status = 1
                break
    except Interrupted:
        pass
    except (StartupFailed, PostgresError, DatabaseSetupError) as error:
        output.line("stack", f"error: {error}")
        status = 1
    finally:
        statuses = stack.stop()
    unclean = {name: code for name, code in statuses.items() if code != 0}
    if unclean and status == 0:
        output.line("stack", f"did not stop cleanly: exit statuses {unclean}")
        status = 1
    output.line("stack", "stopped")
    return status


def _demo_events(stack: Stack, output: PrefixedOutput) -> list[DemoEvent]:
    """The demo events, created with a dev admin token; none when the services verify tokens
    with the caller's own identity provider (no dev token would be accepted)."""
    try:
        admin_token = stack.token("admin", admin=True)
    except LookupError:
        output.line("stack", "no demo events: your AUTH_* settings are in use, and creating events needs an admin")
        return []
    return create_demo_events(stack.event_url, admin_token)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
