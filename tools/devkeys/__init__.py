"""The dev stack's identity and certificates, made once per machine and reused by every run.

Everything lives in one per-machine directory (`home.dev_home()`): the token signing key and
its JWKS (`identity`), a dev CA with the two services' certificates (`certificates`), and the
environment each service needs to use them (`service_env`). Any dev stack, test or script on the
machine therefore accepts the same tokens (`bazel run //tools/token -- --sub alice`). These are
development credentials only: production keys and certificates come from the operator (see
service_runtime/auth/README.md).
"""

from __future__ import annotations

from tools.devkeys.certificates import DevTls, dev_tls
from tools.devkeys.home import dev_home
from tools.devkeys.identity import DevIdentity, dev_identity, mint_token
from tools.devkeys.service_env import service_env

__all__ = ["DevIdentity", "DevTls", "dev_home", "dev_identity", "dev_tls", "mint_token", "service_env"]
