"""Detached work survives its caller's cancellation and is drained at shutdown."""

from __future__ import annotations

import asyncio

from service_runtime.tasks import DetachedTasks


async def test_work_finishes_when_its_caller_is_cancelled() -> None:
    tasks = DetachedTasks()
    done = asyncio.Event()

    async def work() -> str:
        await asyncio.sleep(0.05)
        done.set()
        return "finished"

    caller = asyncio.create_task(tasks.run(work()))
    await asyncio.sleep(0.01)
    caller.cancel()
    await asyncio.wait_for(done.wait(), 1)
    # The task is forgotten by its done callback, which asyncio runs a loop iteration or two
    # after `work` returns (how many differs between Python versions).
    for _ in range(10):
        if len(tasks) == 0:
            break
        await asyncio.sleep(0)
    assert len(tasks) == 0


async def test_drain_waits_for_running_work_then_cancels_the_rest() -> None:
    tasks = DetachedTasks()
    quick = tasks.spawn(asyncio.sleep(0.01, "quick"))
    stuck = tasks.spawn(asyncio.sleep(10))
    await tasks.drain(grace=0.2)
    assert quick.result() == "quick"
    assert stuck.cancelled()
