"""Entry point: `bazel run //event_service [-- serve|migrate]`."""

from __future__ import annotations

import sys

from event_service import app
from event_service.config import Settings
from service_runtime.cli import run_service


def main() -> int:
    return run_service("event_service", sys.argv[1:], Settings.from_env, app.run, app.migrate)


if __name__ == "__main__":
    sys.exit(main())
