"""Assembles layer tarballs and an OCI image configuration into an archive that `docker load` and `podman load` read.

    image.py --spec SPEC.json --stamp stable-status.txt --out IMAGE.tar --digest IMAGE.digest \
        --layer runtime.tar --layer third_party.tar --layer app.tar

The archive is a docker-archive: `manifest.json` names the configuration and the layers, stored
as `blobs/sha256/<digest>` (the layout `docker save` writes since Docker 25). Not an OCI image
layout as well: given one, podman loads that instead, and an OCI configuration has no place
for the health check, which podman then drops. Layers are stored uncompressed, so a layer's
digest is its diff ID.

IMAGE.digest holds the image ID, the sha256 of the configuration, which is what `docker images`
and `podman images` show: it covers every layer (by diff ID) and every setting. Nothing in it
depends on when or where it was built: layers are reproducible (tarball.py), JSON is written
with sorted keys, and the only time is the commit time of the source revision (Bazel's
workspace status, tools/oci/workspace_status.sh). Two builds of the same sources give the same
image ID.

SPEC.json (written by defs.bzl) holds the image configuration: tag, user, entrypoint, env,
working directory, exposed ports, labels, health check.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tools.oci.tarball import Layer

_NANOSECONDS = 1_000_000_000


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int


def blob_path(blob: Blob) -> str:
    return "blobs/" + blob.digest.replace(":", "/")


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def blob_of_file(path: Path) -> Blob:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return Blob("sha256:" + digest.hexdigest(), size)


def blob_of_bytes(data: bytes) -> Blob:
    return Blob("sha256:" + hashlib.sha256(data).hexdigest(), len(data))


def read_stamp(path: Path | None) -> dict[str, str]:
    """Bazel's stable workspace status: one `KEY value` a line."""
    values: dict[str, str] = {}
    if path is not None:
        for line in path.read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(" ")
            values[key] = value
    return values


def rfc3339(epoch_seconds: int) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def image_config(spec: dict[str, Any], stamp: dict[str, str], diff_ids: list[str]) -> dict[str, Any]:
    created = rfc3339(int(stamp.get("STABLE_GIT_COMMIT_TIME", "0") or "0"))
    labels = {
        "org.opencontainers.image.title": spec["title"],
        "org.opencontainers.image.version": stamp.get("STABLE_GIT_VERSION", "unknown"),
        "org.opencontainers.image.revision": stamp.get("STABLE_GIT_REVISION", "unknown"),
        "org.opencontainers.image.created": created,
        **spec.get("labels", {}),
    }
    config: dict[str, Any] = {
        "User": spec["user"],
        "Entrypoint": spec["entrypoint"],
        "Cmd": spec.get("cmd", []),
        "Env": [f"{key}={value}" for key, value in sorted(spec.get("env", {}).items())],
        "WorkingDir": spec.get("workdir", "/"),
        "ExposedPorts": {port: {} for port in spec.get("ports", [])},
        "Labels": labels,
        "StopSignal": "SIGTERM",
    }
    if health := spec.get("healthcheck"):
        # Docker's extension of the image configuration (HEALTHCHECK in a Dockerfile); an exec
        # form ("CMD"), as the image has no shell. Durations are in nanoseconds.
        config["Healthcheck"] = {
            "Test": ["CMD", *health["command"]],
            "Interval": health["interval_seconds"] * _NANOSECONDS,
            "Timeout": health["timeout_seconds"] * _NANOSECONDS,
            "StartPeriod": health["start_period_seconds"] * _NANOSECONDS,
            "Retries": health["retries"],
        }
    return {
        "architecture": spec.get("architecture", "amd64"),
        "os": "linux",
        "created": created,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": created, "created_by": comment} for comment in spec.get("layer_comments", [])],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--stamp", type=Path, help="Bazel's stable-status.txt")
    parser.add_argument("--layer", type=Path, action="append", required=True, help="in order, base first")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--digest", type=Path, required=True)
    args = parser.parse_args()

    spec = json.loads(args.spec.read_text(encoding="utf-8"))
    layers = [blob_of_file(path) for path in args.layer]
    config = canonical_json(image_config(spec, read_stamp(args.stamp), [b.digest for b in layers]))
    config_blob = blob_of_bytes(config)
    manifest = [{"Config": blob_path(config_blob), "RepoTags": [spec["tag"]], "Layers": [blob_path(b) for b in layers]}]
    archive = Layer()
    for path, blob in zip(args.layer, layers, strict=True):
        if blob_path(blob) not in archive:
            archive.add_file(blob_path(blob), path, 0o644)
    archive.add_bytes(blob_path(config_blob), config)
    archive.add_bytes("manifest.json", canonical_json(manifest))
    archive.write(args.out)
    args.digest.write_text(config_blob.digest + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
