"""The load tool's plan and options, without a stack: holds and confirms are drawn as asked,
deterministically, and a run without them sends what it always did."""

from __future__ import annotations

import random

import pytest

from tools.loadtest.launch import LaunchSettings
from tools.loadtest.main import main
from tools.loadtest.workload import Workload, bookings


def test_holds_and_confirms_are_drawn_at_their_fractions() -> None:
    workload = Workload(
        "spread", requests=4000, concurrency=8, events=5, seats_per_event=100, hold_fraction=0.5, confirm_fraction=0.25
    )
    plan = list(bookings(workload, "k"))
    holds = [b for b in plan if b.hold]
    assert 1800 < len(holds) < 2200
    assert 400 < sum(b.confirm for b in holds) < 600
    assert not any(b.confirm for b in plan if not b.hold)
    assert plan == list(bookings(workload, "k"))  # the same seed, the same run


def test_a_run_without_holds_plans_what_it_did_before_holds_existed() -> None:
    plain = Workload("spread", requests=200, concurrency=8, events=5, seats_per_event=10, retry_fraction=0.3, seed=7)
    plan = list(bookings(plain, "k"))
    # The draws of a run without holds, as they were: no extra random number per booking.
    rng = random.Random(7)
    before = [(rng.randrange(5), rng.random() < 0.3, rng.random() < 0.0) for _ in range(200)]
    assert [(b.event, b.retry, b.cancel) for b in plan] == before
    assert not any(b.hold or b.confirm for b in plan)
    assert "50% as holds, 0% of them confirmed" in Workload(**{**plain.__dict__, "hold_fraction": 0.5}).describe()


def test_the_launched_stack_gets_the_hold_settings() -> None:
    assert LaunchSettings(hold_ttl=5, hold_sweep_interval=0.2, user_cap=20).booking_env() == {
        "HOLD_TTL_SECONDS": "5",
        "HOLD_SWEEP_INTERVAL_SECONDS": "0.2",
        "MAX_SEATS_PER_USER_PER_EVENT": "20",
    }
    assert LaunchSettings().booking_env() == {}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--hold-fraction", "1.5"], "--hold-fraction and --confirm-fraction are fractions"),
        (["--hold-ttl", "5"], "--hold-ttl sets the stack --launch starts"),
        (["--launch", "--hold-ttl", "0"], "--hold-ttl must be 1..86400 seconds"),
        (["--launch", "--hold-sweep-interval", "0.01"], "--hold-sweep-interval must be 0.05..60 seconds"),
        ([], "the audit needs --booking-dsn and --event-dsn (or --no-audit, or --launch)"),
    ],
)
def test_bad_hold_options_are_usage_errors(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_status:
        main(["flash", *(["--no-audit"] if args and "--launch" not in args else []), *args])
    assert exit_status.value.code == 2
    assert message in capsys.readouterr().err
