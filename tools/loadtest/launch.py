"""`--launch`: the load tool's own throw-away stack (the launcher of //:ticketflow and the
benchmark: an embedded PostgreSQL and both services on free ports, this machine's dev key),
with the booking service settings a run wants to exercise: a short hold TTL and sweep
interval, the per-user cap the run assumes, a short waiting-list offer TTL and poll. The
services' logs go to a directory the tool names, not to its output."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tools.stack.config import Ports, StackConfig
from tools.stack.stack import Stack
from tools.supervisor.output import LogDirectory


@dataclass(frozen=True)
class LaunchSettings:
    hold_ttl: int | None = None  # HOLD_TTL_SECONDS; None: the service's default
    hold_sweep_interval: float | None = None  # HOLD_SWEEP_INTERVAL_SECONDS
    user_cap: int | None = None  # MAX_SEATS_PER_USER_PER_EVENT
    offer_ttl: int | None = None  # WAITLIST_OFFER_TTL_SECONDS
    waitlist_poll: float | None = None  # WAITLIST_POLL_SECONDS

    def booking_env(self) -> dict[str, str]:
        settings = {
            "HOLD_TTL_SECONDS": self.hold_ttl,
            "HOLD_SWEEP_INTERVAL_SECONDS": self.hold_sweep_interval,
            "MAX_SEATS_PER_USER_PER_EVENT": self.user_cap,
            "WAITLIST_OFFER_TTL_SECONDS": self.offer_ttl,
            "WAITLIST_POLL_SECONDS": self.waitlist_poll,
        }
        return {name: f"{value:g}" for name, value in settings.items() if value is not None}


@contextlib.contextmanager
def launched_stack(settings: LaunchSettings, log_dir: Path | None = None) -> Iterator[Stack]:
    """Both services on a throw-away PostgreSQL, ready; stopped and removed on exit."""
    directory = log_dir or Path(tempfile.mkdtemp(prefix="loadtest-stack-"))
    config = StackConfig(
        ports=Ports.free(),
        event_db="loadtest_events",
        booking_db="loadtest_bookings",
        environ=dict(os.environ),
        service_env={"booking": settings.booking_env()},
    )
    print(
        f"launching a throw-away stack (booking service: {settings.booking_env() or 'defaults'}); logs in {directory}"
    )
    with Stack(config, LogDirectory(directory)) as stack:
        yield stack
