"""The booking service's periodic work (reconciler, hold sweeper, event-cancellation
follower): each runs in every replica, one round every interval, started and stopped with
the service. A failed round is logged and the next one runs as planned: each round only
works on rows it leases, so nothing is lost by skipping one."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Periodic:
    name: str
    round: Callable[[], Awaitable[object]]
    interval: float  # seconds between the end of a round and the start of the next


async def run_forever(work: Periodic) -> None:
    while True:
        try:
            await work.round()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s round failed", work.name)
        await asyncio.sleep(work.interval)


class Background:
    """Runs each piece of periodic work in a task of its own until `stop()`."""

    def __init__(self, works: Sequence[Periodic]) -> None:
        self._works = list(works)
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(run_forever(w), name=w.name) for w in self._works]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
