"""Dev credentials: made once, reused, private, safe to create from two processes at once,
and accepted by the services' own verifier and TLS settings."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509

from service_runtime.auth.errors import Unauthenticated
from service_runtime.auth.jwks import JwksKeySet
from service_runtime.auth.principal import Principal
from service_runtime.auth.settings import AuthSettings
from service_runtime.auth.tls import ChannelTls, ServerTls
from service_runtime.auth.verifier import TokenVerifier
from service_runtime.config import Env
from tools.devkeys import dev_home, dev_identity, dev_tls, mint_token, service_env


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def verifier_for(home: Path) -> TokenVerifier:
    settings = AuthSettings.from_env(Env(service_env("booking_service", home)))
    keys = JwksKeySet.from_settings(settings)
    await keys.load()
    return TokenVerifier(settings, keys)


def test_the_home_directory_comes_from_the_environment() -> None:
    assert dev_home({"TICKETFLOW_DEV_HOME": "/x/dev", "HOME": "/h"}) == Path("/x/dev")
    assert dev_home({"XDG_STATE_HOME": "/state", "HOME": "/h"}) == Path("/state/ticketflow-dev")
    assert dev_home({"HOME": "/h"}) == Path("/h/.local/state/ticketflow-dev")


def test_credentials_are_made_once_and_reused(tmp_path: Path) -> None:
    home = tmp_path / "dev"
    identity, tls = dev_identity(home), dev_tls(home)
    written = {path: path.stat().st_mtime_ns for path in home.rglob("*.pem")}
    assert dev_identity(home) == identity
    assert dev_identity(home).private_key_pem == identity.private_key_pem
    assert dev_tls(home) == tls
    assert {path: path.stat().st_mtime_ns for path in home.rglob("*.pem")} == written


def test_the_directory_and_private_keys_are_private(tmp_path: Path) -> None:
    home = tmp_path / "dev"
    identity, tls = dev_identity(home), dev_tls(home)
    assert mode(home) == mode(home / "tls") == 0o700
    for key in (home / "signing-key.pem", home / "tls" / "ca-key.pem", tls.event_key, tls.booking_key):
        assert mode(key) == 0o600, key
    assert json.loads(identity.jwks_file.read_text())["keys"][0].keys() >= {"kid", "kty", "crv", "x", "y"}
    assert "d" not in json.loads(identity.jwks_file.read_text())["keys"][0]
    assert "PRIVATE" not in repr(identity)


def test_processes_starting_at_once_share_one_set_of_credentials(tmp_path: Path) -> None:
    home = tmp_path / "dev"
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from tools.devkeys import dev_identity, dev_tls\n"
        "home = Path(sys.argv[1])\n"
        "print(dev_identity(home).kid, dev_tls(home).ca_file.read_text().replace(chr(10), ''))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    runs = [
        subprocess.Popen([sys.executable, "-c", script, str(home)], stdout=subprocess.PIPE, text=True, env=env)
        for _ in range(4)
    ]
    outputs = {run.communicate(timeout=60)[0] for run in runs}
    assert all(run.returncode == 0 for run in runs)
    assert len(outputs) == 1
    assert outputs.pop().split()[0] == dev_identity(home).kid
    assert not list(home.rglob("*.tmp"))


async def test_minted_tokens_verify_with_the_dev_settings(tmp_path: Path) -> None:
    home = tmp_path / "dev"
    identity, tokens = dev_identity(home), await verifier_for(home)
    assert tokens.verify(mint_token(identity, "alice")) == Principal("alice", is_admin=False)
    assert tokens.verify(mint_token(identity, "root", admin=True)) == Principal("root", is_admin=True)
    assert tokens.verify(mint_token(identity, "bob", ttl=timedelta(minutes=5))) == Principal("bob")


async def test_tokens_of_another_machine_are_refused(tmp_path: Path) -> None:
    tokens = await verifier_for(tmp_path / "here")
    with pytest.raises(Unauthenticated):
        tokens.verify(mint_token(dev_identity(tmp_path / "there"), "alice"))


def test_broken_certificates_are_made_again(tmp_path: Path) -> None:
    home = tmp_path / "dev"
    tls = dev_tls(home)
    tls.ca_file.write_text("garbage")
    dev_tls(home)
    ca = x509.load_pem_x509_certificate(tls.ca_file.read_bytes())
    for cert in (tls.event_cert, tls.booking_cert):
        x509.load_pem_x509_certificate(cert.read_bytes()).verify_directly_issued_by(ca)


def test_the_event_service_certificate_names_its_addresses(tmp_path: Path) -> None:
    tls = dev_tls(tmp_path / "dev")
    names = x509.load_pem_x509_certificate(tls.event_cert.read_bytes()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert names.value.get_values_for_type(x509.DNSName) == ["localhost", "event-service"]
    assert [str(ip) for ip in names.value.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]


def test_each_service_gets_the_settings_it_needs(tmp_path: Path) -> None:
    home = tmp_path / "dev"
    event, booking = service_env("event_service", home), service_env("booking_service", home)
    for env in (event, booking):
        AuthSettings.from_env(Env(env))
    assert ServerTls.from_env(Env(event)) is not None
    assert ChannelTls.from_env(Env(booking)) is not None
    assert not any(name.startswith("EVENT_SERVICE_TLS") for name in event)
    assert not any(name.startswith("GRPC_TLS") for name in booking)
    with pytest.raises(ValueError, match="unknown service"):
        service_env("payment_service", home)
