"""The image configuration: labels from the source revision, fixed times, the health check."""

from __future__ import annotations

from pathlib import Path

from tools.oci.image import image_config, read_stamp, rfc3339

SPEC = {
    "title": "event_service",
    "tag": "ticketflow/event_service:latest",
    "user": "65532:65532",
    "entrypoint": ["/usr/bin/python3.11", "-m", "event_service"],
    "env": {"PYTHONPATH": "/app/ticketflow", "LANG": "C.UTF-8"},
    "ports": ["8082/tcp"],
    "healthcheck": {
        "command": ["/usr/bin/python3.11", "/usr/local/lib/ticketflow/healthcheck.py"],
        "interval_seconds": 10,
        "timeout_seconds": 5,
        "start_period_seconds": 30,
        "retries": 3,
    },
    "layer_comments": ["runtime", "third-party", "app"],
}
STAMP = {"STABLE_GIT_REVISION": "3bbd7c5abc", "STABLE_GIT_VERSION": "v0.1.0", "STABLE_GIT_COMMIT_TIME": "1764040000"}


def test_labels_and_the_creation_time_come_from_the_commit() -> None:
    config = image_config(SPEC, STAMP, ["sha256:1", "sha256:2", "sha256:3"])
    labels = config["config"]["Labels"]
    assert labels["org.opencontainers.image.revision"] == "3bbd7c5abc"
    assert labels["org.opencontainers.image.version"] == "v0.1.0"
    assert labels["org.opencontainers.image.title"] == "event_service"
    assert config["created"] == labels["org.opencontainers.image.created"] == "2025-11-25T03:06:40Z"
    assert {h["created"] for h in config["history"]} == {config["created"]}
    assert config["rootfs"] == {"type": "layers", "diff_ids": ["sha256:1", "sha256:2", "sha256:3"]}


def test_without_a_revision_the_image_says_unknown_and_1970() -> None:
    config = image_config(SPEC, {}, [])
    assert config["created"] == rfc3339(0) == "1970-01-01T00:00:00Z"
    assert config["config"]["Labels"]["org.opencontainers.image.revision"] == "unknown"


def test_the_health_check_is_an_exec_form_with_nanosecond_durations() -> None:
    health = image_config(SPEC, STAMP, [])["config"]["Healthcheck"]
    assert health["Test"] == ["CMD", "/usr/bin/python3.11", "/usr/local/lib/ticketflow/healthcheck.py"]
    assert (health["Interval"], health["Timeout"], health["Retries"]) == (10_000_000_000, 5_000_000_000, 3)


def test_environment_is_sorted_and_ports_are_exposed() -> None:
    config = image_config(SPEC, STAMP, [])["config"]
    assert config["Env"] == ["LANG=C.UTF-8", "PYTHONPATH=/app/ticketflow"]
    assert config["ExposedPorts"] == {"8082/tcp": {}}


def test_the_stamp_file_is_key_space_value(tmp_path: Path) -> None:
    stamp = tmp_path / "stable-status.txt"
    stamp.write_text("STABLE_GIT_REVISION abc-dirty\nBUILD_HOST vm\n")
    assert read_stamp(stamp) == {"STABLE_GIT_REVISION": "abc-dirty", "BUILD_HOST": "vm"}
