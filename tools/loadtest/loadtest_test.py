"""The load tool against the real stack (both services, real sockets, real PostgreSQL, identity
on): exact answers for a small flash sale, a clean audit after retries and cancels, and after
holds of which half are confirmed and the rest run out on a short TTL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.loadtest.run import Result, Targets, run
from tools.loadtest.workload import Workload
from tools.stack.stack import Stack
from tools.testing.launch import running_stack
from tools.testing.postgres import PostgresServer


@pytest.fixture(scope="module")
def stack(postgresql_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    log_dir: Path = tmp_path_factory.mktemp("stack")
    with running_stack(postgresql_server, log_dir) as stack:
        yield stack


# A short hold TTL and sweep interval, so that the holds left unconfirmed run out within the test.
HOLD_TTL, SWEEP = 2, 0.2


@pytest.fixture(scope="module")
def holds_stack(postgresql_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    log_dir: Path = tmp_path_factory.mktemp("holds")
    with running_stack(
        postgresql_server, log_dir, HOLD_TTL_SECONDS=str(HOLD_TTL), HOLD_SWEEP_INTERVAL_SECONDS=str(SWEEP)
    ) as stack:
        yield stack


def targets(stack: Stack, sweep: float = 1.0) -> Targets:
    return Targets(
        stack.booking_url,
        stack.event_url,
        stack.identity,
        stack.booking_dsn,
        stack.event_dsn,
        hold_sweep_interval=sweep,
    )


async def test_a_flash_sale_sells_exactly_the_seats_and_passes_the_audit(stack: Stack) -> None:
    workload = Workload("flash", requests=200, concurrency=20, events=1, seats_per_event=50)
    # Just enough users that none can reach the cap of 20 seats per event.
    assert workload.user_count() == 10 and not workload.cap_reachable()
    result: Result = await run(workload, targets(stack), settle_timeout=10)
    assert result.stats.book.statuses == {201: 50, 409: 150}, stack.logs()
    assert len(result.stats.confirmed_ids) == 50
    assert result.problems == []
    assert result.audit is not None
    assert result.audit.ok, result.audit.violations
    assert result.ok
    latency = result.stats.book.summary()
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"]


async def test_retries_and_cancels_spread_over_events_keep_every_guarantee(stack: Stack) -> None:
    workload = Workload(
        "spread",
        requests=200,
        concurrency=20,
        events=5,
        seats_per_event=20,
        seats_per_booking=2,
        retry_fraction=0.3,
        cancel_fraction=0.3,
        seed=7,
    )
    result = await run(workload, targets(stack), settle_timeout=10)
    assert set(result.stats.book.statuses) <= {201, 409}
    assert result.stats.retry.count > 0 and set(result.stats.retry.statuses) <= {201, 409}
    assert result.stats.cancel.count > 0 and set(result.stats.cancel.statuses) == {200}
    assert result.problems == []
    assert result.audit is not None
    assert result.audit.ok, result.audit.violations
    assert result.audit.bookings_by_status["CANCELLED"] == result.stats.cancel.count


async def test_a_user_over_the_cap_is_refused_and_that_is_no_problem(stack: Stack) -> None:
    # 3 users asking for 25 seats each of one event of plenty: each gets 20, then USER_LIMIT_REACHED.
    workload = Workload("flash", requests=75, concurrency=10, events=1, seats_per_event=500, users=3)
    assert workload.cap_reachable()
    result = await run(workload, targets(stack), settle_timeout=10)
    assert result.stats.book.statuses == {201: 60, 409: 15}, stack.logs()
    assert result.problems == []
    assert result.ok


async def test_holds_half_confirmed_the_rest_run_out_and_the_audit_is_clean(holds_stack: Stack) -> None:
    workload = Workload(
        "spread",
        requests=300,
        concurrency=32,
        events=3,
        seats_per_event=60,
        hold_fraction=0.5,
        confirm_fraction=0.5,
        retry_fraction=0.1,
        cancel_fraction=0.1,
        seed=3,
    )
    result = await run(workload, targets(holds_stack, SWEEP), settle_timeout=15)
    stats = result.stats
    assert result.problems == [], holds_stack.logs()
    assert set(stats.book.statuses) <= {201, 409}
    # About half the bookings that got seats were holds, and about half of those were confirmed
    # (a confirm that came after the 2 s TTL is a 409 HOLD_EXPIRED, counted, not an error).
    assert 50 < stats.holds < 130, stats.report()
    assert stats.confirm.count == stats.hold_confirms + stats.hold_expired_answers > 20
    assert set(stats.confirm.statuses) <= {200, 409}
    assert stats.holds_left_to_expire > 20
    assert "holds: " in stats.report()
    audit = result.audit
    assert audit is not None
    assert audit.ok, audit.lines()
    # Nothing HELD once the TTL and a sweep have passed: every hold ended confirmed, released or expired.
    assert "HELD" not in audit.bookings_by_status
    assert audit.bookings_by_status["EXPIRED"] == stats.holds_left_to_expire
    # The seats of the expired holds came back: what is taken is exactly the CONFIRMED bookings.
    assert audit.total_seats - audit.available_seats == audit.seats_by_status["CONFIRMED"]
    assert result.ok
