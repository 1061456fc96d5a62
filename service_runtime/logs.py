"""Logging set-up for the entry points: one line per record, to stderr."""

from __future__ import annotations

import logging
import sys


def configure(level: str, service: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s %(levelname)-7s {service} %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Per-request lines from Hypercorn are the access log, enabled separately (ACCESS_LOG).
    logging.getLogger("hypercorn.access").setLevel(logging.WARNING)
