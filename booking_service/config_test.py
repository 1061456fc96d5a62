"""The booking service's settings of holds and of the sweeps: defaults, bounds, and errors
that name the variable."""

from __future__ import annotations

from datetime import timedelta

import pytest

from booking_service.config import Settings
from service_runtime.config import ConfigError, Env

BASE = {"AUTH_JWKS_FILE": "/nonexistent/jwks.json", "AUTH_ISSUER": "https://idp.test/", "AUTH_AUDIENCE": "tf"}


def _settings(**values: str) -> Settings:
    return Settings.from_env(Env({**BASE, **values}))


def test_defaults() -> None:
    settings = _settings()
    assert settings.hold_ttl == timedelta(seconds=600)
    assert settings.hold_sweep_interval == timedelta(seconds=1)
    assert settings.event_cancellation_poll == timedelta(seconds=2)
    assert settings.waitlist_offer_ttl == timedelta(minutes=30)
    assert settings.waitlist_poll == timedelta(seconds=1)


def test_waitlist_settings_within_bounds_are_taken() -> None:
    settings = _settings(WAITLIST_OFFER_TTL_SECONDS="172800", WAITLIST_POLL_SECONDS="0.05")
    assert settings.waitlist_offer_ttl == timedelta(days=2)
    assert settings.waitlist_poll == timedelta(seconds=0.05)
    assert _settings(WAITLIST_OFFER_TTL_SECONDS="1").waitlist_offer_ttl == timedelta(seconds=1)


def test_values_within_bounds_are_taken() -> None:
    settings = _settings(
        HOLD_TTL_SECONDS="86400", HOLD_SWEEP_INTERVAL_SECONDS="0.05", EVENT_CANCELLATION_POLL_SECONDS="0.5"
    )
    assert settings.hold_ttl == timedelta(days=1)
    assert settings.hold_sweep_interval == timedelta(seconds=0.05)
    assert settings.event_cancellation_poll == timedelta(seconds=0.5)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HOLD_TTL_SECONDS", "0"),
        ("HOLD_TTL_SECONDS", "86401"),
        ("HOLD_TTL_SECONDS", "1.5"),
        ("HOLD_TTL_SECONDS", "ten"),
        ("HOLD_SWEEP_INTERVAL_SECONDS", "0.01"),
        ("HOLD_SWEEP_INTERVAL_SECONDS", "61"),
        ("HOLD_SWEEP_INTERVAL_SECONDS", "nan"),
        ("EVENT_CANCELLATION_POLL_SECONDS", "0"),
        ("EVENT_CANCELLATION_POLL_SECONDS", "3601"),
        ("WAITLIST_OFFER_TTL_SECONDS", "0"),
        ("WAITLIST_OFFER_TTL_SECONDS", "172801"),
        ("WAITLIST_OFFER_TTL_SECONDS", "1.5"),
        ("WAITLIST_OFFER_TTL_SECONDS", "half an hour"),
        ("WAITLIST_POLL_SECONDS", "0"),
        ("WAITLIST_POLL_SECONDS", "-1"),
        ("WAITLIST_POLL_SECONDS", "3601"),
        ("WAITLIST_POLL_SECONDS", "inf"),
    ],
)
def test_a_bad_value_is_an_error_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"^{name}: "):
        _settings(**{name: value})
