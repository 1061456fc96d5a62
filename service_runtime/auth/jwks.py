"""`JwksKeySet`: the identity provider's token signing keys, by `kid`, kept fresh in the background.

The keys are read once at start-up (`load()`: a failure stops the service with a ConfigError
naming the variable), then again every `refresh_seconds` by `run_refresh()`, a task the service
starts with its servers and cancels when it stops. A token whose `kid` is not in the set is
refused on the spot and calls `request_refresh()`, which wakes that task early, at most once
per `min_refresh_interval`: a rotated key is picked up within seconds, and a stream of made-up
`kid`s costs at most one fetch per interval. Lookups are plain dict reads: nothing on the
request path waits for a file or the network. A failed refresh is logged and the keys already
held stay in use.

Only public signature keys are taken: entries without a `kid`, symmetric (`oct`) keys, keys
carrying private material, keys for encryption (`use` other than `sig`) and keys PyJWT cannot
read are skipped with a warning.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import jwt

from service_runtime.auth.settings import AuthSettings
from service_runtime.config import ConfigError

log = logging.getLogger(__name__)

Fetch = Callable[[], Awaitable[bytes]]

# A JWKS is a few kilobytes; a document much larger than this is not one.
MAX_JWKS_BYTES = 1024 * 1024


class JwksError(Exception):
    """The key set could not be read or holds no usable key; the message has no key material."""


class JwksKeySet:
    def __init__(
        self,
        fetch: Fetch,
        *,
        source: str,
        refresh_seconds: float = 300.0,
        min_refresh_interval: float = 5.0,
    ) -> None:
        self._fetch = fetch
        self.source = source
        self._refresh_seconds = refresh_seconds
        self._min_refresh_interval = min_refresh_interval
        self._keys: dict[str, jwt.PyJWK] = {}
        self._wanted = asyncio.Event()
        self._last_fetch = float("-inf")
        self.refreshes = 0

    @classmethod
    def from_settings(cls, settings: AuthSettings, *, min_refresh_interval: float = 5.0) -> JwksKeySet:
        if settings.jwks_file is not None:
            fetch = file_source(settings.jwks_file)
        else:
            assert settings.jwks_url is not None
            fetch = url_source(settings.jwks_url)
        return cls(
            fetch,
            source=settings.jwks_source,
            refresh_seconds=settings.jwks_refresh_seconds,
            min_refresh_interval=min_refresh_interval,
        )

    @classmethod
    def from_document(cls, document: Mapping[str, Any], *, source: str = "JWKS") -> JwksKeySet:
        """A fixed key set (tools and tests); its refresh keeps the same keys."""
        data = json.dumps(document).encode()

        async def fetch() -> bytes:
            return data

        keys = cls(fetch, source=source)
        keys._keys = parse_jwks(data)
        return keys

    def get(self, kid: str) -> jwt.PyJWK | None:
        return self._keys.get(kid)

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def request_refresh(self) -> None:
        """Asks the refresh task to fetch the keys now (rate-limited). Call on the event loop."""
        self._wanted.set()

    async def load(self) -> None:
        """The first fetch, at start-up: raises ConfigError naming the variable if it fails."""
        try:
            await self._refresh_once()
        except JwksError as error:
            raise ConfigError(f"{self.source}: {error}") from None

    async def refresh(self) -> bool:
        """Fetches the keys once; on failure logs it, keeps the current keys and returns False."""
        try:
            await self._refresh_once()
        except JwksError as error:
            log.warning("JWKS refresh from %s failed, keeping %d key(s): %s", self.source, len(self._keys), error)
            return False
        return True

    async def run_refresh(self) -> None:
        """Refreshes every `refresh_seconds`, and soon after `request_refresh()`, until cancelled."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wanted.wait(), self._refresh_seconds)
            delay = self._last_fetch + self._min_refresh_interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._wanted.clear()
            try:
                await self.refresh()
            except Exception:
                # The task must outlive any surprise; the next round tries again.
                log.exception("JWKS refresh from %s failed unexpectedly", self.source)

    async def _refresh_once(self) -> None:
        self._last_fetch = time.monotonic()
        self.refreshes += 1
        keys = parse_jwks(await self._fetch())
        for kid, key in keys.items():
            old = self._keys.get(kid)
            if old is not None and old.algorithm_name == key.algorithm_name and old.key == key.key:
                # The same key object: tokens it verified stay in the verifier's cache.
                keys[kid] = old
        if keys.keys() != self._keys.keys():
            # At start-up (no keys yet) quietly: a start-up that fails later must print one line.
            level = logging.INFO if self._keys else logging.DEBUG
            log.log(level, "JWKS from %s: key ids %s", self.source, ", ".join(sorted(keys)))
        self._keys = keys


def parse_jwks(data: bytes) -> dict[str, jwt.PyJWK]:
    """The usable public signature keys of a JWKS document, by `kid`."""
    try:
        document = json.loads(data)
    except ValueError as error:
        raise JwksError(f"not JSON ({error.__class__.__name__})") from None
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise JwksError('not a JWKS: no "keys" list')
    keys: dict[str, jwt.PyJWK] = {}
    for index, entry in enumerate(entries):
        problem = _unusable(entry)
        if problem is None:
            try:
                key = jwt.PyJWK(entry)
            except jwt.PyJWTError as error:
                problem = f"unreadable ({error.__class__.__name__})"
            else:
                if entry["kid"] in keys:
                    problem = "a second key with the same kid"
                else:
                    keys[entry["kid"]] = key
        if problem is not None:
            kid = entry.get("kid") if isinstance(entry, dict) else None
            log.warning("JWKS key %d (kid %r) skipped: %s", index, kid, problem)
    if not keys:
        raise JwksError("no usable signature key (each needs a kid and a public EC, RSA or OKP key)")
    return keys


def _unusable(entry: object) -> str | None:
    if not isinstance(entry, dict):
        return "not an object"
    if not isinstance(entry.get("kid"), str) or not entry["kid"]:
        return "no kid"
    if entry.get("kty") == "oct":
        return "a symmetric key (only public keys verify tokens)"
    if "d" in entry:
        return "holds private key material (publish only the public key)"
    if entry.get("use", "sig") != "sig":
        return f"use is {entry.get('use')!r}, not 'sig'"
    return None


def file_source(path: Path) -> Fetch:
    """Reads the JWKS file, in a thread (never on the event loop)."""

    def read() -> bytes:
        try:
            with path.open("rb") as file:
                data = file.read(MAX_JWKS_BYTES + 1)
        except OSError as error:
            raise JwksError(f"cannot read {path}: {error.strerror or error}") from None
        if len(data) > MAX_JWKS_BYTES:
            raise JwksError(f"{path} is larger than {MAX_JWKS_BYTES} bytes")
        return data

    async def fetch() -> bytes:
        return await asyncio.to_thread(read)

    return fetch


def url_source(url: str, *, timeout: float = 10.0) -> Fetch:
    """GETs the JWKS URL with aiohttp. Redirects are not followed: configure the final URL."""

    async def fetch() -> bytes:
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
                session.get(url, allow_redirects=False, headers={"Accept": "application/json"}) as response,
            ):
                if response.status != 200:
                    raise JwksError(f"{url} answered HTTP {response.status}")
                body = bytearray()
                async for chunk in response.content.iter_chunked(64 * 1024):
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        raise JwksError(f"{url} sent more than {MAX_JWKS_BYTES} bytes")
                return bytes(body)
        except (aiohttp.ClientError, TimeoutError) as error:
            raise JwksError(f"cannot fetch {url}: {error or error.__class__.__name__}") from None

    return fetch
