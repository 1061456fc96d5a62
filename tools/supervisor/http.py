"""Waiting for a process (a service, a container) to answer over HTTP."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The status of GET `url`, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        # The error holds the response; close it (Python 3.14 warns when GC has to).
        with error:
            return int(error.code)
    except (urllib.error.URLError, OSError):
        return None


def wait_for_http(
    url: str,
    *,
    timeout: float,
    status: int = 200,
    interval: float = 0.1,
    alive: Callable[[], None] = lambda: None,
) -> bool:
    """Polls GET `url` until it answers `status` (True) or `timeout` seconds pass (False).

    `alive()` is called before each attempt and raises to give up at once, for example when the
    process that should answer has exited.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive()
        if http_status(url, timeout=min(2.0, timeout)) == status:
            return True
        time.sleep(interval)
    return False
