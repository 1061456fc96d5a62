"""TokenVerifier against every way a token can be right or wrong, with real keys."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
import pytest

from service_runtime.auth import testkeys
from service_runtime.auth.errors import TokenProblem, Unauthenticated
from service_runtime.auth.jwks import JwksKeySet
from service_runtime.auth.principal import Principal
from service_runtime.auth.testkeys import SigningKey, claims, eventually, forge, sign
from service_runtime.auth.verifier import TokenVerifier

EC = testkeys.signing_key("ec-1", "ES256")
RSA = testkeys.signing_key("rsa-1", "RS256")
EC384 = testkeys.signing_key("ec384-1", "ES384")  # in the JWKS, but ES384 is not in AUTH_ALGORITHMS
OTHER = testkeys.signing_key("ec-1", "ES256")  # same kid as EC, another key: a forged signature
ROTATED = testkeys.signing_key("ec-2", "ES256")  # not in the JWKS at first


def verifier(*keys: SigningKey, **settings: Any) -> TokenVerifier:
    return TokenVerifier(testkeys.settings(**settings), JwksKeySet.from_document(testkeys.jwks(*keys)))


@dataclass(frozen=True)
class Case:
    name: str
    header: str | None  # the Authorization header value
    expected: Principal | TokenProblem


def bearer(make: Callable[[], str]) -> str:
    return f"Bearer {make()}"


def swap_payload(token: str, payload: str) -> str:
    header, _, signature = token.split(".")
    return f"{header}.{payload}.{signature}"


NOW = int(time.time())
CASES = [
    Case("valid user", bearer(lambda: sign(EC, claims())), Principal("alice", is_admin=False)),
    Case("admin by role", bearer(lambda: sign(EC, claims(roles=["admin"]))), Principal("alice", is_admin=True)),
    Case("admin by scope", bearer(lambda: sign(EC, claims(scope="read admin"))), Principal("alice", is_admin=True)),
    Case("admin by scp list", bearer(lambda: sign(EC, claims(scp=["admin"]))), Principal("alice", is_admin=True)),
    Case("role text is not a list", bearer(lambda: sign(EC, claims(roles="admin"))), Principal("alice", False)),
    Case("scope word must match whole", bearer(lambda: sign(EC, claims(scope="administrator"))), Principal("alice")),
    Case("scheme is case-insensitive", f"bEaReR {sign(EC, claims())}", Principal("alice")),
    Case("RS256 allowed", bearer(lambda: sign(RSA, claims())), Principal("alice")),
    Case("missing header", None, TokenProblem.MISSING),
    Case("another scheme", "Basic YWxpY2U6c2VjcmV0", TokenProblem.MISSING),
    Case("bearer without token", "Bearer", TokenProblem.MALFORMED),
    Case("bearer with two words", "Bearer abc def", TokenProblem.MALFORMED),
    Case("not a JWT", "Bearer abc.def", TokenProblem.MALFORMED),
    Case("header not JSON", "Bearer bm90anNvbg.e30.c2ln", TokenProblem.MALFORMED),
    Case("header not an object", "Bearer WzFd.e30.c2ln", TokenProblem.MALFORMED),
    Case(
        "payload swapped: the signature fails first",
        bearer(lambda: swap_payload(sign(EC, claims()), "bm90")),
        TokenProblem.INVALID,
    ),
    Case("expired", bearer(lambda: sign(EC, claims(exp=NOW - 120))), TokenProblem.EXPIRED),
    Case("expired within leeway", bearer(lambda: sign(EC, claims(exp=NOW - 10))), Principal("alice")),
    Case("not yet valid", bearer(lambda: sign(EC, claims(nbf=NOW + 120))), TokenProblem.INVALID),
    Case("not yet valid within leeway", bearer(lambda: sign(EC, claims(nbf=NOW + 10))), Principal("alice")),
    Case("wrong issuer", bearer(lambda: sign(EC, claims(iss="https://evil.example/"))), TokenProblem.INVALID),
    Case("wrong audience", bearer(lambda: sign(EC, claims(aud="another-api"))), TokenProblem.INVALID),
    Case("audience in a list", bearer(lambda: sign(EC, claims(aud=["x", "ticketflow"]))), Principal("alice")),
    Case("no exp", bearer(lambda: sign(EC, claims(exp=None))), TokenProblem.INVALID),
    Case("no sub", bearer(lambda: sign(EC, claims(sub=None))), TokenProblem.INVALID),
    Case("empty sub", bearer(lambda: sign(EC, claims(sub=""))), TokenProblem.INVALID),
    Case("sub too long", bearer(lambda: sign(EC, claims(sub="a" * 65))), TokenProblem.INVALID),
    Case("sub of 64 characters", bearer(lambda: sign(EC, claims(sub="a" * 64))), Principal("a" * 64)),
    Case("bad signature", bearer(lambda: sign(OTHER, claims())), TokenProblem.INVALID),
    Case("no kid", bearer(lambda: jwt.encode(claims(), EC.private_pem, algorithm="ES256")), TokenProblem.INVALID),
    Case(
        "alg none",
        bearer(lambda: forge({"alg": "none", "typ": "JWT", "kid": "ec-1"}, claims(), secret=None)),
        TokenProblem.INVALID,
    ),
    Case(
        "HS256 signed with the public key PEM",
        bearer(lambda: forge({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, claims(), secret=RSA.public_pem)),
        TokenProblem.INVALID,
    ),
    Case(
        "header alg differs from the key's",
        bearer(lambda: sign(RSA, claims(), kid="ec-1")),  # RS256 token naming the EC key
        TokenProblem.INVALID,
    ),
    Case("unknown kid", bearer(lambda: sign(ROTATED, claims())), TokenProblem.INVALID),
    Case("disallowed algorithm", bearer(lambda: sign(EC384, claims())), TokenProblem.INVALID),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_verify(case: Case) -> None:
    tokens = verifier(EC, RSA, EC384)
    if isinstance(case.expected, Principal):
        assert tokens.authenticate(case.header) == case.expected
        return
    with pytest.raises(Unauthenticated) as refused:
        tokens.authenticate(case.header)
    assert refused.value.reason is case.expected
    assert refused.value.error == (None if case.expected is TokenProblem.MISSING else "invalid_token")
    assert refused.value.metadata == {"cause": case.expected.value}
    if case.header:  # nothing of the credential is echoed back
        for part in case.header.split():
            assert part.lower() == "bearer" or part not in refused.value.message


def test_a_leeway_of_zero_refuses_a_token_just_expired() -> None:
    with pytest.raises(Unauthenticated) as refused:
        verifier(EC, leeway_seconds=0).verify(sign(EC, claims(exp=int(time.time()) - 2)))
    assert refused.value.reason is TokenProblem.EXPIRED


def test_a_configured_admin_role_replaces_the_default() -> None:
    tokens = verifier(EC, admin_role="ticketflow:admin")
    assert not tokens.verify(sign(EC, claims(roles=["admin"]))).is_admin
    assert tokens.verify(sign(EC, claims(scope="openid ticketflow:admin"))).is_admin


def test_verified_tokens_are_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens, token = verifier(EC), sign(EC, claims())
    decodes = 0
    real_decode = jwt.decode

    def counting_decode(*args: Any, **kwargs: Any) -> Any:
        nonlocal decodes
        decodes += 1
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting_decode)
    assert [tokens.verify(token) for _ in range(3)] == [Principal("alice")] * 3
    assert decodes == 1


def test_a_cached_token_stops_working_at_its_exp() -> None:
    tokens = verifier(EC, leeway_seconds=0)
    token = sign(EC, claims(exp=int(time.time()) + 1))
    assert tokens.verify(token) == Principal("alice")
    time.sleep(max(0.0, jwt.decode(token, options={"verify_signature": False})["exp"] - time.time()) + 0.1)
    with pytest.raises(Unauthenticated) as refused:
        tokens.verify(token)
    assert refused.value.reason is TokenProblem.EXPIRED


def test_the_cache_is_bounded() -> None:
    tokens = TokenVerifier(testkeys.settings(), JwksKeySet.from_document(testkeys.jwks(EC)), cache_size=2)
    first, *rest = [sign(EC, claims(sub=f"user{n}")) for n in range(3)]
    for token in [first, *rest]:
        tokens.verify(token)
    assert list(tokens._cache) == rest


async def test_a_refresh_that_changes_nothing_keeps_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = JwksKeySet.from_document(testkeys.jwks(EC))
    tokens, token = TokenVerifier(testkeys.settings(), keys), sign(EC, claims())
    tokens.verify(token)
    assert await keys.refresh()
    monkeypatch.setattr(jwt, "decode", None)  # any signature check now would fail
    assert tokens.verify(token) == Principal("alice")


async def test_a_key_removed_from_the_jwks_revokes_its_cached_tokens() -> None:
    documents = [testkeys.jwks(EC, RSA), testkeys.jwks(RSA)]

    async def fetch() -> bytes:
        return json.dumps(documents[0]).encode()

    keys = JwksKeySet(fetch, source="test")
    await keys.load()
    tokens = TokenVerifier(testkeys.settings(), keys)
    token = sign(EC, claims())
    assert tokens.verify(token) == Principal("alice")
    documents.pop(0)
    assert await keys.refresh()
    with pytest.raises(Unauthenticated):
        tokens.verify(token)


async def test_an_unknown_kid_triggers_a_refresh_that_accepts_the_rotated_key() -> None:
    published = [EC]

    async def fetch() -> bytes:
        return json.dumps(testkeys.jwks(*published)).encode()

    keys = JwksKeySet(fetch, source="test", refresh_seconds=3600, min_refresh_interval=0.05)
    await keys.load()
    tokens = TokenVerifier(testkeys.settings(), keys)
    token = sign(ROTATED, claims())
    with pytest.raises(Unauthenticated):
        tokens.verify(token)  # the IdP has not published the key yet
    published.append(ROTATED)
    refresher = asyncio.create_task(keys.run_refresh())
    try:
        with pytest.raises(Unauthenticated):
            tokens.verify(token)  # asks for a refresh; refused until it has run
        await eventually(lambda: "ec-2" in keys.kids)
        assert tokens.verify(token) == Principal("alice")
    finally:
        refresher.cancel()
