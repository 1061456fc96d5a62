"""Entry point: `bazel run //booking_service [-- serve|migrate]`."""

from __future__ import annotations

import sys

from booking_service import app
from booking_service.config import Settings
from service_runtime.cli import run_service


def main() -> int:
    return run_service("booking_service", sys.argv[1:], Settings.from_env, app.run, app.migrate)


if __name__ == "__main__":
    sys.exit(main())
