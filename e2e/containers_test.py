"""Both services from their images, run by podman against a throw-away PostgreSQL: what compose.yaml starts.

The images are the archives `bazel run //<service>:load` loads. Each runs with host networking
(so the PostgreSQL of the test, on 127.0.0.1, is reachable) as its image's non-root user, with
identity and mutual TLS on: the only thing mounted into the containers is, read-only, a copy of
the test's own dev credentials that service needs (JWKS, certificates and its own key), owned
by the image's user, as an operator mounts a Secret. Skips only when podman cannot
run here at all (./tools/bazel installs podman and runc on Debian); under --config=ci that skip
fails (tools/pytest/skips.py).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tools.devkeys import dev_identity, mint_token, service_env
from tools.oci.podman import Podman, throwaway_podman, unavailable
from tools.supervisor.runfiles import runfile
from tools.testing.postgres import PostgresServer, free_port

# Where the credentials appear inside the containers.
SECRETS = "/etc/ticketflow"


@pytest.fixture(scope="module")
def podman() -> Iterator[Podman]:
    if images_unavailable := os.environ.get("OCI_IMAGES_UNAVAILABLE"):
        pytest.skip(f"no images to run: {images_unavailable}")
    reason = unavailable()
    if reason is not None:
        pytest.skip(reason)
    with throwaway_podman() as instance:
        yield instance


@pytest.fixture
def dev_home(tmp_path: Path) -> Path:
    return tmp_path / "dev"


@pytest.fixture
def secrets() -> Iterator[list[Path]]:
    """Directories made for mounting, removed after the test."""
    made: list[Path] = []
    yield made
    for directory in made:
        shutil.rmtree(directory, ignore_errors=True)


def mounted_credentials(
    podman: Podman, image: str, service: str, dev_home: Path, secrets: list[Path]
) -> tuple[Path, dict[str, str]]:
    """A directory to mount at SECRETS, and the service's dev settings pointing there. The dev
    home is private (0700, under the test's directory in /root): the service gets a copy of only
    the files its settings name, in a directory of its own under /tmp that only the image's
    user can read."""
    user = podman.command("image", "inspect", "--format", "{{.Config.User}}", image).stdout.strip()
    uid, _, gid = user.partition(":")
    directory = Path(tempfile.mkdtemp(prefix="tfsecrets-", dir="/tmp"))
    secrets.append(directory)
    env = service_env(service, dev_home)
    for name, value in env.items():
        source = Path(value)
        if source.is_relative_to(dev_home):
            copy = directory / source.name
            shutil.copyfile(source, copy)
            os.chown(copy, int(uid), int(gid or uid))
            copy.chmod(0o400)
            env[name] = f"{SECRETS}/{source.name}"
    os.chown(directory, int(uid), int(gid or uid))
    directory.chmod(0o500)
    return directory, env


def post(url: str, body: dict[str, Any], token: str) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.load(error)


def test_booking_through_the_images_confirms_then_reports_sold_out(
    podman: Podman,
    postgresql_server: PostgresServer,
    dev_home: Path,
    secrets: list[Path],
) -> None:
    event_image = podman.load(Path(runfile(os.environ["EVENT_IMAGE"])))
    booking_image = podman.load(Path(runfile(os.environ["BOOKING_IMAGE"])))
    event_http, event_grpc, booking_http = free_port(), free_port(), free_port()
    with (
        postgresql_server.database(prefix="events") as events,
        postgresql_server.database(prefix="bookings") as bookings,
    ):
        event_secrets, event_env = mounted_credentials(podman, event_image, "event_service", dev_home, secrets)
        event = podman.run(
            event_image,
            "event-service",
            {
                **postgresql_server.env(events),
                **event_env,
                "HTTP_PORT": str(event_http),
                "GRPC_PORT": str(event_grpc),
            },
            volumes={event_secrets: SECRETS},
        )
        event.wait_http(f"http://127.0.0.1:{event_http}/readyz")
        booking_secrets, booking_env = mounted_credentials(podman, booking_image, "booking_service", dev_home, secrets)
        booking = podman.run(
            booking_image,
            "booking-service",
            {
                **postgresql_server.env(bookings),
                **booking_env,
                "HTTP_PORT": str(booking_http),
                "GRPC_PORT": str(free_port()),
                "EVENT_SERVICE_ADDR": f"127.0.0.1:{event_grpc}",
            },
            volumes={booking_secrets: SECRETS},
        )
        booking.wait_http(f"http://127.0.0.1:{booking_http}/readyz")

        identity = dev_identity(dev_home)
        status, created = post(
            f"http://127.0.0.1:{event_http}/events",
            {"name": "Gig", "startTime": "2027-03-01T19:30:00Z", "totalSeats": 1},
            mint_token(identity, "ops", admin=True),
        )
        assert status == 201, created
        order = {"eventId": created["id"], "seats": 1}
        # Booked over the booking service's mutual-TLS channel to the event service.
        status, confirmed = post(f"http://127.0.0.1:{booking_http}/bookings", order, mint_token(identity, "alice"))
        assert status == 201, confirmed
        assert confirmed["status"] == "CONFIRMED" and confirmed["userId"] == "alice"
        status, refused = post(f"http://127.0.0.1:{booking_http}/bookings", order, mint_token(identity, "bob"))
        assert status == 409, refused
        assert refused["details"][0]["reason"] == "SOLD_OUT"

        for container in (booking, event):
            health = container.healthcheck()
            assert health.returncode == 0, f"{container.name}: {health.stdout}{health.stderr}"
        for container in (booking, event):
            assert container.stop() == 0, container.logs()
