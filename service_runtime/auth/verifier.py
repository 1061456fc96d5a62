"""`TokenVerifier`: a bearer JWT in, a `Principal` out, or `Unauthenticated`.

Checks, in order: the header's `alg` is one of `AUTH_ALGORITHMS` (so `none` and HS256 are
refused before any key is touched); its `kid` names a key of the JWKS (an unknown `kid` asks
the key set for a refresh and is refused now); the key's own algorithm is the header's (an RSA
key never verifies a token that claims ES256 or HS256); then PyJWT checks the signature with
that key, `iss`, `aud`, `exp`, `nbf` and `iat` with `AUTH_LEEWAY_SECONDS` of leeway, and
requires `exp`, `iss`, `aud` and `sub`. `sub` must be 1 to 64 printable characters.

Admin: the token is an admin's when `AUTH_ADMIN_ROLE` is an element of its `roles` claim (a
list, as Keycloak and Azure AD app roles give), or one of the space-separated words of its
`scope` or `scp` claim (a string, or a list as Okta gives `scp`).

Verified tokens are cached (a bounded LRU keyed by the token string) until their `exp`, so a
client that sends the same token on every request pays for one signature check. An entry is
used only while the key that verified it is still the JWKS key of that `kid`: removing a key
from the JWKS revokes its cached tokens at the next refresh.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import jwt

from service_runtime.auth.bearer import MAX_TOKEN_LENGTH, bearer_token, bearer_token_from_metadata
from service_runtime.auth.errors import TokenProblem, Unauthenticated
from service_runtime.auth.jwks import JwksKeySet
from service_runtime.auth.principal import Principal
from service_runtime.auth.settings import AuthSettings

MAX_SUBJECT_LENGTH = 64
_REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub"]
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class _Verified:
    principal: Principal
    expires_at: float
    kid: str
    key: jwt.PyJWK


def _malformed() -> Unauthenticated:
    return Unauthenticated(TokenProblem.MALFORMED, "the bearer token is malformed")


def _unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header, only to pick the key: `jwt.decode` parses the whole token again, strictly,
    and the signature covers the header. (`jwt.get_unverified_header` would decode all three
    segments a second time; this costs a fraction of that.)"""
    segment, _, rest = token.partition(".")
    if not _SEGMENT.fullmatch(segment) or rest.count(".") != 1:
        raise _malformed()
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, RecursionError):
        raise _malformed() from None
    if not isinstance(header, dict):
        raise _malformed()
    return header


def _invalid(message: str) -> Unauthenticated:
    return Unauthenticated(TokenProblem.INVALID, message)


class TokenVerifier:
    def __init__(self, settings: AuthSettings, keys: JwksKeySet, *, cache_size: int = 10_000) -> None:
        self._settings = settings
        self._keys = keys
        self._algorithms = frozenset(settings.algorithms)
        self._cache: OrderedDict[str, _Verified] = OrderedDict()
        self._cache_size = cache_size

    def verify(self, token: str) -> Principal:
        """The principal of a bearer token; raises Unauthenticated. Never waits for I/O."""
        cached = self._cache.get(token)
        if cached is not None:
            if time.time() < cached.expires_at and self._keys.get(cached.kid) is cached.key:
                self._cache.move_to_end(token)
                return cached.principal
            del self._cache[token]
        verified = self._verify(token)
        if self._cache_size > 0:
            self._cache[token] = verified
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return verified.principal

    def authenticate(self, authorization: str | None) -> Principal:
        """The principal of an `Authorization` header value (None when absent)."""
        return self.verify(bearer_token(authorization))

    def authenticate_metadata(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> Principal:
        """The principal of a gRPC call's invocation metadata."""
        return self.verify(bearer_token_from_metadata(metadata))

    def _verify(self, token: str) -> _Verified:
        if len(token) > MAX_TOKEN_LENGTH:
            raise _malformed()
        header = _unverified_header(token)
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise _invalid("the bearer token's signature algorithm is not accepted")
        if not isinstance(kid, str) or not kid:
            raise _invalid("the bearer token does not name its signing key (kid)")
        key = self._keys.get(kid)
        if key is None:
            self._keys.request_refresh()
            raise _invalid("the bearer token's signing key is not known")
        if key.algorithm_name != alg:
            raise _invalid("the bearer token's signature algorithm does not match its key")
        claims = self._decode(token, key, alg)
        subject = claims["sub"]
        if not 1 <= len(subject) <= MAX_SUBJECT_LENGTH or not subject.isprintable():
            raise _invalid(f"the bearer token's subject must be 1 to {MAX_SUBJECT_LENGTH} printable characters")
        principal = Principal(subject=subject, is_admin=self._is_admin(claims))
        return _Verified(principal, float(claims["exp"]), kid, key)

    def _decode(self, token: str, key: jwt.PyJWK, alg: str) -> dict[str, Any]:
        settings = self._settings
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[alg],
                issuer=settings.issuer,
                audience=settings.audience,
                leeway=settings.leeway_seconds,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated(TokenProblem.EXPIRED, "the bearer token has expired") from None
        except jwt.ImmatureSignatureError:
            raise _invalid("the bearer token is not valid yet") from None
        except jwt.InvalidIssuerError:
            raise _invalid("the bearer token's issuer is not accepted") from None
        except jwt.InvalidAudienceError:
            raise _invalid("the bearer token is not meant for this service (audience)") from None
        except jwt.MissingRequiredClaimError as error:
            raise _invalid(f"the bearer token lacks the {error.claim} claim") from None
        except jwt.InvalidSignatureError:
            raise _invalid("the bearer token's signature does not verify") from None
        except jwt.DecodeError:
            raise _malformed() from None
        except jwt.PyJWTError:
            raise _invalid("the bearer token is not valid") from None

    def _is_admin(self, claims: dict[str, Any]) -> bool:
        role = self._settings.admin_role
        roles = claims.get("roles")
        if isinstance(roles, list) and role in roles:
            return True
        for name in ("scope", "scp"):
            scope = claims.get(name)
            words = scope.split() if isinstance(scope, str) else scope
            if isinstance(words, list) and role in words:
                return True
        return False
