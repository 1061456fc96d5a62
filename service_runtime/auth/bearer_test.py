"""The RFC 6750 side: tokens out of headers and gRPC metadata, challenges, and the error table."""

from __future__ import annotations

import grpc
import pytest

from service_runtime.auth.bearer import bearer_token, bearer_token_from_metadata
from service_runtime.auth.errors import PermissionDenied, TokenProblem, Unauthenticated
from service_runtime.error_table import ErrorTable

TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln-_"


@pytest.mark.parametrize("header", [f"Bearer {TOKEN}", f"bearer {TOKEN}", f"BEARER  {TOKEN} ", f" Bearer {TOKEN}"])
def test_the_token_comes_out_of_the_header(header: str) -> None:
    assert bearer_token(header) == TOKEN


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        (None, TokenProblem.MISSING),
        ("", TokenProblem.MISSING),
        ("Basic YWxpY2U6c2VjcmV0", TokenProblem.MISSING),
        ("Bearer", TokenProblem.MALFORMED),
        ("Bearer ", TokenProblem.MALFORMED),
        (f"Bearer {TOKEN} extra", TokenProblem.MALFORMED),
        ("Bearer a,b", TokenProblem.MALFORMED),
        ("Bearer " + "a" * 9000, TokenProblem.MALFORMED),
    ],
)
def test_a_header_without_a_bearer_token_is_refused(header: str | None, problem: TokenProblem) -> None:
    with pytest.raises(Unauthenticated) as refused:
        bearer_token(header)
    assert refused.value.reason is problem


def test_the_token_comes_out_of_grpc_metadata() -> None:
    assert bearer_token_from_metadata((("x-request-id", "1"), ("authorization", f"Bearer {TOKEN}"))) == TOKEN
    assert bearer_token_from_metadata([("authorization", f"Bearer {TOKEN}".encode())]) == TOKEN


@pytest.mark.parametrize(
    ("metadata", "problem"),
    [
        (None, TokenProblem.MISSING),
        ((("x-request-id", "1"),), TokenProblem.MISSING),
        ((("authorization", f"Bearer {TOKEN}"), ("authorization", f"Bearer {TOKEN}")), TokenProblem.MALFORMED),
        ((("authorization", b"Bearer \xff"),), TokenProblem.MALFORMED),
    ],
    ids=["none", "no authorization", "two", "not ascii"],
)
def test_metadata_without_one_bearer_token_is_refused(
    metadata: tuple[tuple[str, str | bytes], ...] | None, problem: TokenProblem
) -> None:
    with pytest.raises(Unauthenticated) as refused:
        bearer_token_from_metadata(metadata)
    assert refused.value.reason is problem


def test_the_challenge_names_the_error_only_for_a_presented_token() -> None:
    missing = Unauthenticated(TokenProblem.MISSING, "a bearer token is required")
    expired = Unauthenticated(TokenProblem.EXPIRED, "the bearer token has expired")
    assert missing.challenge() == 'Bearer realm="ticketflow"'
    assert expired.challenge() == 'Bearer realm="ticketflow", error="invalid_token"'


def test_refusals_map_to_401_and_403_in_every_error_table() -> None:
    table = ErrorTable("test.ticketflow", {})
    status, body = table.http_body(Unauthenticated(TokenProblem.INVALID, "the bearer token is not valid"))
    assert status == 401
    assert body["code"] == grpc.StatusCode.UNAUTHENTICATED.value[0]
    assert body["details"][0]["reason"] == "UNAUTHENTICATED"
    assert body["details"][0]["metadata"] == {"cause": "TOKEN_INVALID"}
    status, body = table.http_body(PermissionDenied())
    assert (status, body["details"][0]["reason"]) == (403, "PERMISSION_DENIED")
    assert table.grpc_status(PermissionDenied()).code == grpc.StatusCode.PERMISSION_DENIED
