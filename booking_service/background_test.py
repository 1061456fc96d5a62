"""Periodic work: rounds keep coming after a failed one, and stop with the service."""

from __future__ import annotations

import asyncio

import pytest

from booking_service.background import Background, Periodic


async def test_a_failed_round_is_followed_by_the_next_and_stop_ends_them(caplog: pytest.LogCaptureFixture) -> None:
    rounds: list[int] = []
    third = asyncio.Event()

    async def flaky() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 3:
            third.set()
        if len(rounds) == 1:
            raise RuntimeError("database went away")

    async def idle() -> None:
        await asyncio.sleep(0)

    background = Background([Periodic("flaky", flaky, 0.01), Periodic("idle", idle, 0.01)])
    background.start()
    await asyncio.wait_for(third.wait(), timeout=5)
    await background.stop()
    stopped_at = len(rounds)
    await asyncio.sleep(0.05)
    assert len(rounds) == stopped_at
    assert "flaky round failed" in caplog.text
