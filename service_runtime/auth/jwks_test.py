"""JwksKeySet from a file and from a real HTTP server on 127.0.0.1: start-up, rotation by kid,
rate-limited refreshes, and a request path that never waits for the network."""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from service_runtime.auth import testkeys
from service_runtime.auth.errors import Unauthenticated
from service_runtime.auth.jwks import JwksError, JwksKeySet, file_source, parse_jwks, url_source
from service_runtime.auth.principal import Principal
from service_runtime.auth.settings import AuthSettings
from service_runtime.auth.testkeys import claims, eventually, sign
from service_runtime.auth.verifier import TokenVerifier
from service_runtime.config import ConfigError, Env

OLD = testkeys.signing_key("key-2025", "ES256")
NEW = testkeys.signing_key("key-2026", "RS256")


@dataclass
class IdentityProvider:
    """A JWKS endpoint whose document, status and speed the test controls."""

    document: dict[str, Any]
    status: int = 200
    requests: int = 0
    stall: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        if not self.stall.is_set():
            await self.stall.wait()
        return web.json_response(self.document, status=self.status)


@pytest.fixture
async def idp() -> AsyncIterator[IdentityProvider]:
    provider = IdentityProvider(testkeys.jwks(OLD))
    provider.stall.set()  # answer at once unless a test says otherwise
    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", provider.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    provider.url = f"http://127.0.0.1:{port}/.well-known/jwks.json"
    try:
        yield provider
    finally:
        provider.stall.set()
        await runner.cleanup()


def url_settings(url: str, **env: str) -> AuthSettings:
    return AuthSettings.from_env(
        Env({"AUTH_JWKS_URL": url, "AUTH_ISSUER": testkeys.ISSUER, "AUTH_AUDIENCE": "ticketflow", **env})
    )


async def test_keys_load_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(testkeys.jwks(OLD, NEW)))
    settings = AuthSettings.from_env(
        Env({"AUTH_JWKS_FILE": str(path), "AUTH_ISSUER": testkeys.ISSUER, "AUTH_AUDIENCE": "ticketflow"})
    )
    keys = JwksKeySet.from_settings(settings)
    await keys.load()
    assert keys.kids == {"key-2025", "key-2026"}
    assert TokenVerifier(settings, keys).verify(sign(NEW, claims())) == Principal("alice")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "AUTH_JWKS_FILE: cannot read"),
        (b"{not json", "AUTH_JWKS_FILE: not JSON"),
        (b'{"issuer": "x"}', 'AUTH_JWKS_FILE: not a JWKS: no "keys" list'),
        (json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "h"}]}).encode(), "no usable signature key"),
    ],
    ids=["missing", "not json", "no keys", "only a symmetric key"],
)
async def test_an_unusable_file_stops_start_up(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "jwks.json"
    if content is not None:
        path.write_bytes(content)
    keys = JwksKeySet(file_source(path), source="AUTH_JWKS_FILE")
    with pytest.raises(ConfigError, match=message):
        await keys.load()


def test_unusable_entries_are_skipped_and_the_rest_kept() -> None:
    private = {**OLD.jwk, "kid": "with-private", "d": "AAAA"}
    entries = [
        {**OLD.jwk},
        {**NEW.jwk, "kid": None},
        {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
        private,
        {**NEW.jwk, "kid": "enc", "use": "enc"},
        {"kty": "EC", "kid": "broken", "crv": "P-256", "x": "AA", "y": "AA"},
        {**NEW.jwk, "kid": "key-2025"},
    ]
    keys = parse_jwks(json.dumps({"keys": entries}).encode())
    assert set(keys) == {"key-2025"}
    assert keys["key-2025"].algorithm_name == "ES256"  # the first of two entries with one kid


async def test_keys_load_from_a_url(idp: IdentityProvider) -> None:
    keys = JwksKeySet.from_settings(url_settings(idp.url))
    await keys.load()
    assert keys.kids == {"key-2025"}


async def test_a_failing_url_stops_start_up_naming_the_variable(idp: IdentityProvider) -> None:
    idp.status = 500
    with pytest.raises(ConfigError, match=r"AUTH_JWKS_URL: .* answered HTTP 500"):
        await JwksKeySet.from_settings(url_settings(idp.url)).load()
    with pytest.raises(ConfigError, match=r"AUTH_JWKS_URL: cannot fetch"):
        await JwksKeySet.from_settings(url_settings(idp.url.replace("/.well-known", ":1/x"))).load()


async def test_a_failed_refresh_keeps_the_keys(idp: IdentityProvider) -> None:
    keys = JwksKeySet(url_source(idp.url), source="AUTH_JWKS_URL")
    await keys.load()
    idp.status = 503
    assert not await keys.refresh()
    assert keys.kids == {"key-2025"}


async def test_rotation_by_kid_works_within_a_refresh(idp: IdentityProvider) -> None:
    """The IdP starts signing with a new key: the first token with the new kid is refused and
    asks for a refresh; once that has run (milliseconds), the new key verifies."""
    settings = url_settings(idp.url, AUTH_JWKS_REFRESH_SECONDS="3600")
    keys = JwksKeySet.from_settings(settings, min_refresh_interval=0.1)
    await keys.load()
    tokens = TokenVerifier(settings, keys)
    refresher = asyncio.create_task(keys.run_refresh())
    try:
        idp.document = testkeys.jwks(OLD, NEW)
        rotated = sign(NEW, claims(sub="bob"))
        with pytest.raises(Unauthenticated):
            tokens.verify(rotated)
        started = time.monotonic()
        await eventually(lambda: "key-2026" in keys.kids)
        assert time.monotonic() - started < 2
        assert tokens.verify(rotated) == Principal("bob")
        assert tokens.verify(sign(OLD, claims())) == Principal("alice")
    finally:
        refresher.cancel()


async def test_the_periodic_refresh_picks_up_new_keys(idp: IdentityProvider) -> None:
    keys = JwksKeySet(url_source(idp.url), source="AUTH_JWKS_URL", refresh_seconds=0.1, min_refresh_interval=0.05)
    await keys.load()
    refresher = asyncio.create_task(keys.run_refresh())
    try:
        idp.document = testkeys.jwks(NEW)
        await eventually(lambda: keys.kids == {"key-2026"})
    finally:
        refresher.cancel()


async def test_made_up_kids_cost_at_most_one_fetch_per_interval(idp: IdentityProvider) -> None:
    settings = url_settings(idp.url, AUTH_JWKS_REFRESH_SECONDS="3600")
    keys = JwksKeySet.from_settings(settings, min_refresh_interval=0.5)
    await keys.load()
    tokens = TokenVerifier(settings, keys)
    refresher = asyncio.create_task(keys.run_refresh())
    try:
        deadline = time.monotonic() + 1.2
        while time.monotonic() < deadline:
            with pytest.raises(Unauthenticated):
                tokens.verify(sign(OLD, claims(), kid=f"made-up-{time.monotonic_ns()}"))
            await asyncio.sleep(0.01)
    finally:
        refresher.cancel()
    # The start-up load, then at most one refresh per 0.5 s over 1.2 s.
    assert 2 <= idp.requests <= 4


async def test_verify_never_waits_for_the_network(idp: IdentityProvider) -> None:
    """With the IdP hanging mid-refresh, verify still answers at once from the keys it has."""
    assert not inspect.iscoroutinefunction(TokenVerifier.verify)
    settings = url_settings(idp.url, AUTH_JWKS_REFRESH_SECONDS="3600")
    keys = JwksKeySet.from_settings(settings, min_refresh_interval=0.0)
    await keys.load()
    tokens = TokenVerifier(settings, keys)
    idp.stall.clear()
    refresher = asyncio.create_task(keys.run_refresh())
    try:
        with pytest.raises(Unauthenticated):
            tokens.verify(sign(NEW, claims()))  # unknown kid: a refresh starts, and hangs
        await eventually(lambda: idp.requests >= 2)
        started = time.perf_counter()
        assert tokens.verify(sign(OLD, claims(sub="carol"))) == Principal("carol")
        with pytest.raises(Unauthenticated):
            tokens.verify(sign(NEW, claims(sub="dave")))
        assert time.perf_counter() - started < 0.5
        assert not refresher.done()  # the refresh is still waiting for the IdP
    finally:
        refresher.cancel()


async def test_the_refresh_task_outlives_a_broken_source() -> None:
    calls = 0

    async def fetch() -> bytes:
        nonlocal calls
        calls += 1
        if calls == 1:
            return json.dumps(testkeys.jwks(OLD)).encode()
        raise RuntimeError("surprise")

    keys = JwksKeySet(fetch, source="test", refresh_seconds=0.05, min_refresh_interval=0.0)
    await keys.load()
    refresher = asyncio.create_task(keys.run_refresh())
    try:
        await eventually(lambda: calls >= 3)
        assert not refresher.done()
        assert keys.kids == {"key-2025"}
    finally:
        refresher.cancel()


def test_jwks_errors_carry_no_key_material() -> None:
    private = {**OLD.jwk, "d": "PRIVATE-PART"}
    with pytest.raises(JwksError) as error:
        parse_jwks(json.dumps({"keys": [private]}).encode())
    assert "PRIVATE-PART" not in str(error.value)
