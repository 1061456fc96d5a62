"""Loads an image archive built by py_oci_image into Docker, or into podman without a Docker engine.

    bazel run //event_service:load                   # Docker if its engine answers, else podman
    bazel run //event_service:load -- --engine podman

Prints the loaded tag and image ID. A `docker` command alone is not enough: Docker is used when
`docker info` reaches an engine. podman needs no daemon.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path


def archive_tag(archive: Path) -> str:
    with tarfile.open(archive) as tar:
        member = tar.extractfile("manifest.json")
        assert member is not None
        manifest = json.load(member)
    return str(manifest[0]["RepoTags"][0])


def docker_engine_answers(docker: str) -> bool:
    try:
        result = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"], capture_output=True, timeout=30, check=False
        )
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def choose_engine(wanted: str | None) -> str:
    if wanted is not None:
        path = shutil.which(wanted)
        if path is None:
            sys.exit(f"load: {wanted} is not installed")
        return path
    docker = shutil.which("docker")
    if docker and docker_engine_answers(docker):
        return docker
    podman = shutil.which("podman")
    if podman:
        return podman
    sys.exit(
        "load: no container engine: `docker info` reaches no Docker engine and podman is not installed "
        "(Debian: apt-get install podman runc)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archive", type=Path, required=True, help="the image archive (set by the target)")
    parser.add_argument(
        "--engine", choices=["docker", "podman"], help="default: Docker if its engine answers, else podman"
    )
    args = parser.parse_args()

    archive = args.archive
    if not archive.is_file() and "RUNFILES_DIR" in os.environ:
        # Started from outside its runfiles tree (bazel-bin/…/load): the path is relative to it.
        archive = next(Path(os.environ["RUNFILES_DIR"]).glob(f"*/{args.archive}"), archive)
    engine = choose_engine(args.engine)
    name = Path(engine).name
    tag = archive_tag(archive)
    result = subprocess.run([engine, "load", "-i", str(archive.resolve())], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"load: `{name} load` failed:\n{result.stdout}{result.stderr}")
    image_id = subprocess.run(
        [engine, "image", "inspect", "--format", "{{.Id}}", tag], capture_output=True, text=True, check=False
    ).stdout.strip()
    print(f"loaded into {name}: {tag} (image ID {image_id or 'unknown'})", file=sys.stderr)
    print(tag)
    return 0


if __name__ == "__main__":
    sys.exit(main())
