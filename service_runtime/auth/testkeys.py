"""Signing keys, JWKS documents and tokens of any shape, for the auth tests and the benchmark."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from service_runtime.auth.settings import AuthSettings

ISSUER = "https://idp.example.test/"
AUDIENCE = "ticketflow"
_CURVES: dict[str, ec.EllipticCurve] = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    private_pem: bytes = field(repr=False)
    public_pem: bytes
    jwk: dict[str, Any]  # the public JWK, with kid, alg and use


def signing_key(kid: str, alg: str = "ES256") -> SigningKey:
    """A fresh key for `alg` (ES256/384/512, RS*/PS*)."""
    private: PrivateKeyTypes
    if alg in _CURVES:
        private = ec.generate_private_key(_CURVES[alg])
        public_jwk = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    else:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public_jwk = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    return SigningKey(
        kid=kid,
        alg=alg,
        private_pem=private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        public_pem=private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        jwk={**public_jwk, "kid": kid, "alg": alg, "use": "sig"},
    )


def jwks(*keys: SigningKey) -> dict[str, Any]:
    return {"keys": [key.jwk for key in keys]}


def claims(**overrides: Any) -> dict[str, Any]:
    """A valid claim set for `sub` alice, valid for an hour; None in `overrides` removes a claim."""
    now = int(time.time())
    values: dict[str, Any] = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now, "exp": now + 3600}
    values.update(overrides)
    return {name: value for name, value in values.items() if value is not None}


def sign(key: SigningKey, payload: dict[str, Any], **header: Any) -> str:
    """A token signed by `key` with its kid; `header` adds to or replaces header fields."""
    return jwt.encode(payload, key.private_pem, algorithm=key.alg, headers={"kid": key.kid, **header})


def forge(header: dict[str, Any], payload: dict[str, Any], secret: bytes | None) -> str:
    """A token PyJWT would refuse to make: `alg: none` (no secret) or HS256 with any secret."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = b"" if secret is None else hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def settings(**overrides: Any) -> AuthSettings:
    values: dict[str, Any] = {
        "jwks_file": None,
        "jwks_url": "http://127.0.0.1:1/jwks.json",
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "admin_role": "admin",
        "algorithms": ("ES256", "RS256"),
        "leeway_seconds": 30,
        "jwks_refresh_seconds": 300,
    }
    values.update(overrides)
    return AuthSettings(**values)


async def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Waits until `condition()` holds (what a background task does is seen by polling)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s")
        await asyncio.sleep(0.01)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
