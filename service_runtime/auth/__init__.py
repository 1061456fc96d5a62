"""Who is calling: bearer tokens verified against the identity provider's keys, and mutual TLS
between the services.

One concept per module; import from the module, not from the package (this file stays empty so
that `service_runtime.error_table` can import `errors` without pulling in PyJWT):
- `principal`: `Principal`, the caller a use case receives.
- `errors`: `Unauthenticated` (with its `WWW-Authenticate` challenge) and `PermissionDenied`
  (in the shared error table).
- `bearer`: the RFC 6750 side: the token out of a header or gRPC metadata.
- `settings`: `AuthSettings.from_env`, the `AUTH_*` variables.
- `jwks`: `JwksKeySet`, the signing keys by `kid`, refreshed in the background.
- `verifier`: `TokenVerifier.verify(token) -> Principal`, with a cache of verified tokens.
- `tls`: gRPC credentials from `GRPC_TLS_*` / `EVENT_SERVICE_TLS_*`, and `peer_identities`.

See README.md in this directory for the settings and the production set-up.
"""
