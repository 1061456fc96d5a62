"""`AuthSettings`: how bearer tokens are verified, from the `AUTH_*` variables.

| Variable | Default | Meaning |
|---|---|---|
| `AUTH_JWKS_FILE` | | a JWKS file with the token signing keys (exactly one of this and `AUTH_JWKS_URL`) |
| `AUTH_JWKS_URL` | | the identity provider's `jwks_uri` (https; http only on loopback) |
| `AUTH_ISSUER` | required | the `iss` every token must carry |
| `AUTH_AUDIENCE` | required | a value the token's `aud` must contain |
| `AUTH_ADMIN_ROLE` | `admin` | admin when in the `roles` claim (list) or the `scope`/`scp` claim |
| `AUTH_ALGORITHMS` | `ES256,RS256` | accepted signature algorithms; asymmetric only |
| `AUTH_LEEWAY_SECONDS` | `30` | clock skew allowed on `exp`/`nbf`/`iat` (0..300) |
| `AUTH_JWKS_REFRESH_SECONDS` | `300` | how often the keys are fetched again (1..86400) |
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from service_runtime.config import ConfigError, Env

# Signature algorithms with a public verification key. HMAC (HS*) would make the JWKS a shared
# secret, and `none` is no signature: neither can be configured.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"}
)
_ROLE = re.compile(r"[\x21-\x7e]{1,128}")  # one scope token: printable, no spaces


@dataclass(frozen=True)
class AuthSettings:
    jwks_file: Path | None
    jwks_url: str | None
    issuer: str
    audience: str
    admin_role: str
    algorithms: tuple[str, ...]
    leeway_seconds: int
    jwks_refresh_seconds: int

    @classmethod
    def from_env(cls, env: Env) -> AuthSettings:
        jwks_file = env.text("AUTH_JWKS_FILE", "")
        jwks_url = env.text("AUTH_JWKS_URL", "", max_length=2048)
        if bool(jwks_file) == bool(jwks_url):
            raise ConfigError(
                "AUTH_JWKS_FILE or AUTH_JWKS_URL: set exactly one (the file or the URL of the token signing keys)"
            )
        admin_role = env.text("AUTH_ADMIN_ROLE", "admin")
        if not _ROLE.fullmatch(admin_role):
            raise ConfigError(f"AUTH_ADMIN_ROLE: {admin_role!r} must be one word (no spaces), as in a scope")
        return cls(
            jwks_file=Path(jwks_file) if jwks_file else None,
            jwks_url=_check_url(jwks_url) if jwks_url else None,
            issuer=env.text("AUTH_ISSUER"),
            audience=env.text("AUTH_AUDIENCE"),
            admin_role=admin_role,
            algorithms=_algorithms(env.text("AUTH_ALGORITHMS", "ES256,RS256")),
            leeway_seconds=env.integer("AUTH_LEEWAY_SECONDS", 30, min=0, max=300),
            jwks_refresh_seconds=env.integer("AUTH_JWKS_REFRESH_SECONDS", 300, min=1, max=86400),
        )

    @property
    def jwks_source(self) -> str:
        """The variable the keys come from, for messages."""
        return "AUTH_JWKS_FILE" if self.jwks_file is not None else "AUTH_JWKS_URL"


def _algorithms(raw: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(name.strip() for name in raw.split(",") if name.strip()))
    if not names:
        raise ConfigError("AUTH_ALGORITHMS: name at least one algorithm, e.g. ES256,RS256")
    refused = [name for name in names if name not in ASYMMETRIC_ALGORITHMS]
    if refused:
        raise ConfigError(
            f"AUTH_ALGORITHMS: {', '.join(refused)} not accepted; only asymmetric algorithms are "
            f"({', '.join(sorted(ASYMMETRIC_ALGORITHMS))})"
        )
    return names


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(f"AUTH_JWKS_URL: {url!r} is not an http(s) URL")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        # Keys fetched in clear could be swapped on the way, and then anyone could sign tokens.
        raise ConfigError(f"AUTH_JWKS_URL: {url!r} must use https (http is accepted only for loopback)")
    return url


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
