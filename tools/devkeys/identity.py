"""The dev token signing key (ES256) and its JWKS, and tokens signed with it.

Issuer `ticketflow-dev`, audience `ticketflow`; the `kid` is derived from the public key
(RFC 7638 thumbprint), so it stays the same as long as the key does. An admin token carries
`roles: ["admin"]`, which the services' default `AUTH_ADMIN_ROLE` accepts.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from tools.devkeys.home import PUBLIC, dev_home, locked, write_atomic, write_private_key

ISSUER = "ticketflow-dev"
AUDIENCE = "ticketflow"
ADMIN_ROLE = "admin"
ALGORITHM = "ES256"


@dataclass(frozen=True)
class DevIdentity:
    jwks_file: Path
    issuer: str
    audience: str
    private_key_pem: bytes = field(repr=False)
    kid: str


def dev_identity(home: Path | None = None) -> DevIdentity:
    """The dev signing key and JWKS file, created on first use and reused afterwards."""
    home = dev_home() if home is None else home
    with locked(home):
        key_file, jwks_file = home / "signing-key.pem", home / "jwks.json"
        key, pem = _read_key(key_file)
        if key is None:
            key = ec.generate_private_key(ec.SECP256R1())
            pem = write_private_key(key_file, key)
        public_jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
        kid = "dev-" + _thumbprint(public_jwk)[:16]
        jwks = json.dumps({"keys": [{**public_jwk, "kid": kid, "use": "sig", "alg": ALGORITHM}]}, indent=2).encode()
        if not jwks_file.is_file() or jwks_file.read_bytes() != jwks:
            write_atomic(jwks_file, jwks, PUBLIC)
    return DevIdentity(jwks_file=jwks_file, issuer=ISSUER, audience=AUDIENCE, private_key_pem=pem, kid=kid)


def mint_token(identity: DevIdentity, sub: str, admin: bool = False, ttl: timedelta = timedelta(hours=1)) -> str:
    """A token for `sub` signed with the dev key, valid from now for `ttl`."""
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": identity.issuer,
        "aud": identity.audience,
        "sub": sub,
        "iat": now,
        "nbf": now,
        "exp": now + int(ttl.total_seconds()),
        "jti": uuid.uuid4().hex,
    }
    if admin:
        claims["roles"] = [ADMIN_ROLE]
    return jwt.encode(claims, identity.private_key_pem, algorithm=ALGORITHM, headers={"kid": identity.kid})


def _read_key(path: Path) -> tuple[ec.EllipticCurvePrivateKey | None, bytes]:
    """The usable dev key at `path` and its PEM; (None, b"") when there is none."""
    try:
        pem = path.read_bytes()
        key = serialization.load_pem_private_key(pem, password=None)
    except (OSError, ValueError, TypeError):
        return None, b""
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return key, pem
    return None, b""


def _thumbprint(jwk: dict[str, object]) -> str:
    """RFC 7638: SHA-256 of the required members in lexicographic order, base64url."""
    members = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
