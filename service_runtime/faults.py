"""Fault injection for tests: crash a process at a named point of a use case.

Off unless the environment variable TICKETFLOW_TEST_FAULTS lists a point by name
(comma-separated). Only tests set it, to prove that the system recovers from a process killed
between two steps (for example after the seats are reserved and before the booking is
confirmed). Production deployments never set it; the service logs a warning when it is set.
"""

from __future__ import annotations

import logging
import os
import signal

from service_runtime.config import Env

log = logging.getLogger(__name__)

ENV_VAR = "TICKETFLOW_TEST_FAULTS"


class Faults:
    def __init__(self, enabled: frozenset[str] = frozenset()) -> None:
        self._enabled = enabled
        if enabled:
            log.warning("TEST FAULT INJECTION ENABLED: %s", ", ".join(sorted(enabled)))

    @staticmethod
    def points_from_env(env: Env) -> frozenset[str]:
        """The fault points named in TICKETFLOW_TEST_FAULTS (for the service's settings)."""
        return frozenset(p.strip() for p in env.text(ENV_VAR, "").split(",") if p.strip())

    def point(self, name: str) -> None:
        """Kills this process with SIGKILL (no clean-up at all) if `name` is enabled."""
        if name in self._enabled:
            log.warning("fault injection: killing the process at %s", name)
            os.kill(os.getpid(), signal.SIGKILL)
