"""The health probe asks the port and address the service listens on."""

from __future__ import annotations

from tools.oci.healthcheck import probe_url


def test_the_default_port_and_loopback_when_nothing_is_set() -> None:
    assert probe_url("/healthz", 8082, "HTTP_PORT", {}) == "http://127.0.0.1:8082/healthz"


def test_the_services_port_variable_wins() -> None:
    assert probe_url("/healthz", 8082, "HTTP_PORT", {"HTTP_PORT": "18082"}) == "http://127.0.0.1:18082/healthz"


def test_a_wildcard_listen_address_is_probed_on_loopback_and_a_specific_one_directly() -> None:
    assert probe_url("/healthz", 1, "HTTP_PORT", {"SERVER_HOST": "0.0.0.0"}).startswith("http://127.0.0.1:")
    assert probe_url("/healthz", 1, "HTTP_PORT", {"SERVER_HOST": "10.0.0.5"}).startswith("http://10.0.0.5:")
    assert probe_url("/healthz", 1, "HTTP_PORT", {"SERVER_HOST": "::1"}).startswith("http://[::1]:")
