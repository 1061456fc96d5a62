"""Work that must finish once started, whatever happens to the request that started it.

Quart cancels a request's handler when its client disconnects. A booking that has reserved
seats must still be confirmed or rejected, so such work runs in a task owned by the service,
not by the request: `run(coro)` starts it and waits for it, and a cancelled waiter leaves the
task running. At shutdown `drain(grace)` waits for what is still running.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class DetachedTasks:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Runs `coro` to completion even if the caller is cancelled; returns its result."""
        return await asyncio.shield(self.spawn(coro))

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        # Retrieve the outcome here: when the waiter went away nobody else will, and asyncio
        # would complain. A waiter that is still there gets (and handles) the same error.
        if not task.cancelled() and (error := task.exception()) is not None:
            log.debug("detached task ended with %r", error)

    async def drain(self, grace: float) -> None:
        """Waits up to `grace` seconds for running tasks, then cancels what is left."""
        if not self._tasks:
            return
        log.info("waiting for %d unfinished operations", len(self._tasks))
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("cancelled %d operations still running after %.1f s", len(pending), grace)
            await asyncio.wait(pending, timeout=1.0)
