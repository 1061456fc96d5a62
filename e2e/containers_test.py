"""Both services from their images, run by podman against a throw-away PostgreSQL: what compose.yaml starts.

The images are the archives `bazel run //<service>:load` loads; nothing of the build machine is
mounted into the containers. Each runs with host networking (so the PostgreSQL of the test,
on 127.0.0.1, is reachable) as its image's non-root user. Skips only when podman cannot run
here at all (./tools/bazel installs podman and runc on Debian); under --config=ci that skip
fails (tools/pytest/skips.py).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tools.oci.podman import Podman, throwaway_podman, unavailable
from tools.supervisor.runfiles import runfile
from tools.testing.postgres import PostgresServer, free_port


@pytest.fixture(scope="module")
def podman() -> Iterator[Podman]:
    if images_unavailable := os.environ.get("OCI_IMAGES_UNAVAILABLE"):
        pytest.skip(f"no images to run: {images_unavailable}")
    reason = unavailable()
    if reason is not None:
        pytest.skip(reason)
    with throwaway_podman() as instance:
        yield instance


def post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_booking_through_the_images_confirms_then_reports_sold_out(
    podman: Podman, postgresql_server: PostgresServer
) -> None:
    event_image = podman.load(Path(runfile(os.environ["EVENT_IMAGE"])))
    booking_image = podman.load(Path(runfile(os.environ["BOOKING_IMAGE"])))
    event_http, event_grpc, booking_http = free_port(), free_port(), free_port()
    with (
        postgresql_server.database(prefix="events") as events,
        postgresql_server.database(prefix="bookings") as bookings,
    ):
        event = podman.run(
            event_image,
            "event-service",
            {**postgresql_server.env(events), "HTTP_PORT": str(event_http), "GRPC_PORT": str(event_grpc)},
        )
        event.wait_http(f"http://127.0.0.1:{event_http}/readyz")
        booking = podman.run(
            booking_image,
            "booking-service",
            {
                **postgresql_server.env(bookings),
                "HTTP_PORT": str(booking_http),
                "GRPC_PORT": str(free_port()),
                "EVENT_SERVICE_ADDR": f"127.0.0.1:{event_grpc}",
            },
        )
        booking.wait_http(f"http://127.0.0.1:{booking_http}/readyz")

        status, created = post(
            f"http://127.0.0.1:{event_http}/events",
            {"name": "Gig", "startTime": "2027-03-01T19:30:00Z", "totalSeats": 1},
        )
        assert status == 201, created
        order = {"eventId": created["id"], "seats": 1}
        status, confirmed = post(f"http://127.0.0.1:{booking_http}/bookings", {**order, "userId": "alice"})
        assert status == 201, confirmed
        assert confirmed["status"] == "CONFIRMED"
        status, refused = post(f"http://127.0.0.1:{booking_http}/bookings", {**order, "userId": "bob"})
        assert status == 409, refused
        assert refused["details"][0]["reason"] == "SOLD_OUT"

        for container in (booking, event):
            health = container.healthcheck()
            assert health.returncode == 0, f"{container.name}: {health.stdout}{health.stderr}"
        for container in (booking, event):
            assert container.stop() == 0, container.logs()
