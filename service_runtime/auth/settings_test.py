"""AuthSettings from the environment: defaults, and start-up errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from service_runtime.auth.settings import AuthSettings
from service_runtime.config import ConfigError, Env

BASE = {"AUTH_JWKS_FILE": "/etc/ticketflow/jwks.json", "AUTH_ISSUER": "https://idp/", "AUTH_AUDIENCE": "ticketflow"}


def test_defaults() -> None:
    settings = AuthSettings.from_env(Env(BASE))
    assert settings == AuthSettings(
        jwks_file=Path("/etc/ticketflow/jwks.json"),
        jwks_url=None,
        issuer="https://idp/",
        audience="ticketflow",
        admin_role="admin",
        algorithms=("ES256", "RS256"),
        leeway_seconds=30,
        jwks_refresh_seconds=300,
    )
    assert settings.jwks_source == "AUTH_JWKS_FILE"


def test_a_url_instead_of_a_file() -> None:
    env = {**BASE, "AUTH_JWKS_FILE": "", "AUTH_JWKS_URL": "https://idp.example.com/oauth2/v1/keys"}
    settings = AuthSettings.from_env(Env(env))
    assert (settings.jwks_file, settings.jwks_url) == (None, "https://idp.example.com/oauth2/v1/keys")
    assert settings.jwks_source == "AUTH_JWKS_URL"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"AUTH_JWKS_FILE": ""}, "AUTH_JWKS_FILE or AUTH_JWKS_URL: set exactly one"),
        ({"AUTH_JWKS_URL": "https://idp/keys"}, "AUTH_JWKS_FILE or AUTH_JWKS_URL: set exactly one"),
        ({"AUTH_JWKS_FILE": "", "AUTH_JWKS_URL": "ftp://idp/keys"}, "AUTH_JWKS_URL: 'ftp://idp/keys' is not"),
        ({"AUTH_JWKS_FILE": "", "AUTH_JWKS_URL": "http://idp.example.com/keys"}, "AUTH_JWKS_URL: .* must use https"),
        ({"AUTH_ISSUER": ""}, "AUTH_ISSUER is required"),
        ({"AUTH_AUDIENCE": ""}, "AUTH_AUDIENCE is required"),
        ({"AUTH_ADMIN_ROLE": "ticket admin"}, "AUTH_ADMIN_ROLE: .* one word"),
        ({"AUTH_ALGORITHMS": "HS256"}, "AUTH_ALGORITHMS: HS256 not accepted"),
        ({"AUTH_ALGORITHMS": "ES256,none"}, "AUTH_ALGORITHMS: none not accepted"),
        ({"AUTH_ALGORITHMS": " , "}, "AUTH_ALGORITHMS: name at least one"),
        ({"AUTH_LEEWAY_SECONDS": "3600"}, "AUTH_LEEWAY_SECONDS: 3600 is outside 0..300"),
        ({"AUTH_LEEWAY_SECONDS": "soon"}, "AUTH_LEEWAY_SECONDS: expected an integer"),
        ({"AUTH_JWKS_REFRESH_SECONDS": "0"}, "AUTH_JWKS_REFRESH_SECONDS: 0 is outside"),
    ],
)
def test_incomplete_or_unsafe_settings_are_refused(changes: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        AuthSettings.from_env(Env({**BASE, **changes}))


@pytest.mark.parametrize("host", ["127.0.0.1:8080", "localhost", "[::1]:9000"])
def test_plain_http_is_accepted_on_loopback(host: str) -> None:
    settings = AuthSettings.from_env(Env({**BASE, "AUTH_JWKS_FILE": "", "AUTH_JWKS_URL": f"http://{host}/jwks"}))
    assert settings.jwks_url == f"http://{host}/jwks"


def test_algorithms_are_listed_once_in_order() -> None:
    settings = AuthSettings.from_env(Env({**BASE, "AUTH_ALGORITHMS": "RS256, PS256,RS256,EdDSA"}))
    assert settings.algorithms == ("RS256", "PS256", "EdDSA")
