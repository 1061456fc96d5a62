"""The event service's image, run by podman against a throw-away PostgreSQL, as `docker run` would run it.

Skips only when podman cannot run here at all (./tools/bazel installs podman and runc on Debian).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.oci.podman import Podman, throwaway_podman, unavailable
from tools.testing.postgres import PostgresServer, free_port
from tools.testing.processes import runfile

IMAGE = "event_service/image.tar"


@pytest.fixture(scope="module")
def podman() -> Iterator[Podman]:
    reason = unavailable()
    if reason is not None:
        pytest.skip(reason)
    with throwaway_podman() as instance:
        yield instance


def _post(url: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.load(response)


def test_the_image_serves_events_reports_healthy_and_stops_on_sigterm(
    podman: Podman, postgresql_server: PostgresServer
) -> None:
    image = podman.load(Path(runfile(IMAGE)))
    http_port = free_port()
    with postgresql_server.database(prefix="image") as database:
        env = {**postgresql_server.env(database), "HTTP_PORT": str(http_port), "GRPC_PORT": str(free_port())}
        container = podman.run(image, "event-service", env)
        container.wait_http(f"http://127.0.0.1:{http_port}/healthz")

        status, event = _post(
            f"http://127.0.0.1:{http_port}/events",
            {"name": "Gig", "startTime": "2027-03-01T19:30:00Z", "totalSeats": 2},
        )
        assert status == 201, event
        assert event["availableSeats"] == 2

        health = container.healthcheck()
        assert health.returncode == 0, health.stdout + health.stderr
        assert container.stop() == 0, container.logs()
        assert "stopped" in container.logs()
