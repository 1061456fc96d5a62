"""Natural batching: batches form under concurrency, results and failures reach the right callers."""

from __future__ import annotations

import asyncio

import pytest

from service_runtime.batching import Batcher, Failed


async def test_a_lone_call_runs_at_once_and_concurrent_calls_share_the_next_batch() -> None:
    batches: list[list[int]] = []

    async def run(key: str, items: list[int]) -> list[int | Failed]:
        batches.append(items)
        await asyncio.sleep(0.01)
        return [item * 10 for item in items]

    batcher: Batcher[str, int, int] = Batcher(run)
    first = asyncio.create_task(batcher.submit("k", 1))
    await asyncio.sleep(0)
    rest = await asyncio.gather(*(batcher.submit("k", n) for n in range(2, 6)))
    assert await first == 10 and rest == [20, 30, 40, 50]
    assert batches == [[1], [2, 3, 4, 5]]


async def test_keys_batch_separately_and_batches_are_capped() -> None:
    batches: list[tuple[str, int]] = []

    async def run(key: str, items: list[int]) -> list[int | Failed]:
        batches.append((key, len(items)))
        return list[int | Failed](items)

    batcher: Batcher[str, int, int] = Batcher(run, max_batch=3)
    await asyncio.gather(*(batcher.submit(key, n) for key in "ab" for n in range(4)))
    assert sorted(batches) == [("a", 1), ("a", 3), ("b", 1), ("b", 3)]


async def test_a_failed_item_fails_only_its_caller() -> None:
    async def run(key: None, items: list[int]) -> list[int | Failed]:
        return [Failed(ValueError(item)) if item == 2 else item for item in items]

    batcher: Batcher[None, int, int] = Batcher(run)
    results = await asyncio.gather(*(batcher.submit(None, n) for n in range(4)), return_exceptions=True)
    assert results[:2] == [0, 1] and isinstance(results[2], ValueError) and results[3] == 3


async def test_a_cancelled_caller_does_not_cancel_its_batch() -> None:
    done: list[int] = []

    async def run(key: None, items: list[int]) -> list[int | Failed]:
        await asyncio.sleep(0.05)
        done.extend(items)
        return list[int | Failed](items)

    batcher: Batcher[None, int, int] = Batcher(run)
    caller = asyncio.create_task(batcher.submit(None, 7))
    await asyncio.sleep(0.01)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await batcher.close()
    assert done == [7]


async def test_with_two_in_flight_a_second_batch_does_not_wait_for_the_first() -> None:
    running = 0
    most = 0

    async def run(key: None, items: list[int]) -> list[int | Failed]:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.02)
        running -= 1
        return list[int | Failed](items)

    batcher: Batcher[None, int, int] = Batcher(run, max_in_flight=2)
    first = asyncio.create_task(batcher.submit(None, 1))
    await asyncio.sleep(0)
    second = asyncio.create_task(batcher.submit(None, 2))
    assert list(await asyncio.gather(first, second)) == [1, 2]
    assert most == 2
    await batcher.close()
