"""`bazel run //tools/token`: one token per --sub, in order, accepted with the dev JWKS."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import jwt
import pytest

from service_runtime.auth.jwks import JwksKeySet
from service_runtime.auth.principal import Principal
from service_runtime.auth.settings import AuthSettings
from service_runtime.auth.verifier import TokenVerifier
from service_runtime.config import Env
from tools.devkeys import service_env
from tools.supervisor.runfiles import runfile

TOOL = "tools/token/token"


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TICKETFLOW_DEV_HOME": str(home)}
    return subprocess.run([runfile(TOOL), *args], env=env, capture_output=True, text=True, timeout=60, check=False)


async def verifier_for(home: Path) -> TokenVerifier:
    settings = AuthSettings.from_env(Env(service_env("booking_service", home)))
    keys = JwksKeySet.from_settings(settings)
    await keys.load()
    return TokenVerifier(settings, keys)


async def test_one_token_per_sub_in_order(tmp_path: Path) -> None:
    home = tmp_path / "dev"
    result = run(home, "--sub", "alice", "--sub", "bob", "--sub", "carol")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split("\n")
    assert lines[-1] == "" and len(lines) == 4  # three lines, each ending in a newline
    tokens = await verifier_for(home)  # the key the tool created, read as a service would
    assert [tokens.verify(line) for line in lines[:-1]] == [Principal("alice"), Principal("bob"), Principal("carol")]


async def test_admin_tokens_and_their_lifetime(tmp_path: Path) -> None:
    home = tmp_path / "dev"
    result = run(home, "--sub", "root", "--admin", "--ttl", "15m")
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert (await verifier_for(home)).verify(token) == Principal("root", is_admin=True)
    lifetime = jwt.decode(token, options={"verify_signature": False})["exp"] - time.time()
    assert 14 * 60 < lifetime <= 15 * 60


async def test_the_key_is_reused_across_runs(tmp_path: Path) -> None:
    home = tmp_path / "dev"
    first = run(home, "--sub", "alice").stdout.strip()
    second = run(home, "--sub", "bob").stdout.strip()
    tokens = await verifier_for(home)
    assert [tokens.verify(first), tokens.verify(second)] == [Principal("alice"), Principal("bob")]


@pytest.mark.parametrize(
    "args",
    [[], ["--sub", "alice", "--ttl", "forever"], ["--sub", "alice", "--ttl", "90d"], ["--sub", ""]],
    ids=["no sub", "bad ttl", "ttl too long", "empty sub"],
)
def test_bad_arguments_print_usage_and_no_token(tmp_path: Path, args: list[str]) -> None:
    result = run(tmp_path / "dev", *args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "usage: token" in result.stderr
