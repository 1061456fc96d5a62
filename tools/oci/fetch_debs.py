"""Downloads the pinned Debian packages of debian_packages.lock and checks their sha256 sums.

Run by the `debian_packages` repository rule (debian.bzl) in the repository's directory:

    python3 fetch_debs.py --lock debian_packages.lock --out DIR

`apt-get download NAME=VERSION` fetches each .deb through the machine's apt sources; a file whose
sha256 differs from the lock stops the build. The .deb files land in DIR/debs/, and
DIR/BUILD.bazel exposes them, in lock order, as the filegroup `:debs`. DIR/status.bzl says
whether they could be had: when this machine's apt cannot provide the pinned versions (another
Debian release, or the archive replaced a version since the lock was written), `UNAVAILABLE`
holds the reason, `:debs` is empty, and the images and their tests are left out of `//...`
(tools/oci/defs.bzl), rather than failing every build of the project. With `--require` (CI sets
TICKETFLOW_REQUIRE_ALL_TESTS=1, see debian.bzl) that is an error instead: there, every image is
built and tested.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

UPDATE = "bazel run //tools/oci:debian_packages.update"


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    architecture: str
    sha256: str

    @property
    def file_name(self) -> str:
        # apt-get download's name for the file: an epoch's ':' is written as '%3a'.
        return f"{self.name}_{self.version.replace(':', '%3a')}_{self.architecture}.deb"


def parse_lock(text: str) -> list[Pin]:
    pins = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) != 4 or len(fields[3]) != 64:
            raise ValueError(f"debian_packages.lock:{number}: expected 'name version architecture sha256'")
        pins.append(Pin(*fields))
    return pins


def lock_release(text: str) -> str | None:
    """The Debian release the lock was made for (its `# release: NAME, ...` header line)."""
    for line in text.splitlines():
        if line.startswith("# release: "):
            return line.removeprefix("# release: ").split(",")[0].strip()
    return None


def host_release() -> str | None:
    try:
        lines = Path("/etc/os-release").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, value = line.partition("=")
        if key == "VERSION_CODENAME":
            return value.strip().strip('"')
    return None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class Unavailable(Exception):
    """apt cannot provide the pinned packages here; the message says why and what to do."""


def download(pins: list[Pin], into: Path, release: str | None) -> None:
    command = ["apt-get", "download", "-q"]
    if os.geteuid() == 0:
        # apt drops to the _apt user to download, which cannot write here; as root, stay root.
        command += ["-o", "APT::Sandbox::User=root"]
    command += [f"{pin.name}={pin.version}" for pin in pins]
    result = subprocess.run(command, cwd=into, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        host = host_release()
        if release and host and host != release:
            raise Unavailable(
                f"debian_packages.lock pins Debian {release} packages and this machine runs Debian {host}: "
                f"the images are built on Debian {release}"
            )
        raise Unavailable(
            "apt-get download of the pinned Debian packages failed: "
            + " ".join(result.stderr.split())[:400]
            + " -- If apt knows none of them, its package lists are missing: run `apt-get update` "
            "(./tools/bazel does). If only some versions are unknown, the archive has moved on "
            f"(security updates replace old versions): run `{UPDATE}` and commit the new lock."
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lock", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="the repository's directory")
    parser.add_argument("--require", action="store_true", help="fail, instead of leaving the images out")
    args = parser.parse_args()

    text = args.lock.read_text(encoding="utf-8")
    pins = parse_lock(text)
    debs = args.out / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    try:
        download(pins, debs, lock_release(text))
    except Unavailable as reason:
        if args.require:
            sys.exit(f"the container images cannot be built here, and every test must run (--config=ci): {reason}")
        write_repository(args.out, [], str(reason))
        print(f"WARNING: container images left out of this build: {reason}", file=sys.stderr)
        return 0
    mismatches = []
    for pin in pins:
        path = debs / pin.file_name
        if not path.is_file():
            sys.exit(
                f"apt-get download did not write {path.name}; files there: {sorted(p.name for p in debs.iterdir())}"
            )
        actual = sha256_of(path)
        if actual != pin.sha256:
            mismatches.append(f"  {pin.name} {pin.version}: lock {pin.sha256}, downloaded {actual}")
    if mismatches:
        sys.exit(
            "sha256 of downloaded Debian packages differ from debian_packages.lock:\n"
            + "\n".join(mismatches)
            + f"\nDo not build with them. If the archive really republished them, review and run `{UPDATE}`."
        )

    write_repository(args.out, pins, "")
    print(f"fetched and checked {len(pins)} Debian packages", file=sys.stderr)
    return 0


def write_repository(out: Path, pins: list[Pin], unavailable: str) -> None:
    srcs = "".join(f'        "debs/{pin.file_name}",\n' for pin in pins)
    header = "# Generated by //tools/oci:fetch_debs.py from debian_packages.lock. Do not edit.\n"
    (out / "BUILD.bazel").write_text(
        header + "# The pinned .deb files, checked against the lock's sha256 sums, in lock order.\n"
        "filegroup(\n"
        '    name = "debs",\n'
        f"    srcs = [\n{srcs}    ],\n"
        '    visibility = ["//visibility:public"],\n'
        ")\n",
        encoding="utf-8",
    )
    (out / "status.bzl").write_text(
        header + "# Why the pinned packages cannot be had on this machine; empty when they were fetched.\n"
        f"UNAVAILABLE = {unavailable!r}\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    sys.exit(main())
