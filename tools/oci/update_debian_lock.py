"""Regenerates debian_packages.lock from debian_packages.in: `bazel run //tools/oci:debian_packages.update`.

Pins every package named in debian_packages.in and, recursively, its Depends and Pre-Depends
(the first alternative of each), minus the packages the file excludes, to the version apt would
install now (`apt-cache show --no-all-versions`), with the sha256 apt's signed index records for
that .deb. Nothing is downloaded and nothing is installed: run `apt-get update` first so that
the index is the archive's current one. The repository rule (debian.bzl) later downloads exactly
these versions and checks them against these sums.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

LOCK = "tools/oci/debian_packages.lock"
SOURCE = "tools/oci/debian_packages.in"
COMMAND = "bazel run //tools/oci:debian_packages.update"

_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")


class LockError(Exception):
    """The package list cannot be resolved; the message says what to change."""


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    architecture: str
    sha256: str

    def lock_line(self) -> str:
        return f"{self.name} {self.version} {self.architecture} {self.sha256}"


def parse_source(text: str) -> tuple[list[str], set[str]]:
    """The package list: (roots in file order, excluded names)."""
    roots: list[str] = []
    excluded: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name = line.removeprefix("-")
        if not _NAME.match(name):
            raise LockError(f"{SOURCE}:{number}: expected a package name or -NAME, got {raw.strip()!r}")
        if line.startswith("-"):
            excluded.add(name)
        else:
            roots.append(name)
    return roots, excluded


def parse_record(text: str) -> dict[str, str]:
    """The fields of the first deb822 paragraph of `text` (continuation lines joined)."""
    fields: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        if line[0] in " \t" and key:
            fields[key] += "\n" + line.strip()
            continue
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def dependency_names(relations: str) -> list[str]:
    """Names in a Depends-style field, the first alternative of each `a | b`, without versions."""
    names = []
    for relation in relations.split(","):
        first = relation.split("|", 1)[0].strip()
        if first:
            names.append(re.split(r"[\s(:\[]", first, maxsplit=1)[0])
    return names


def resolve(roots: list[str], excluded: set[str], show: Callable[[str], dict[str, str]]) -> list[Package]:
    """The closure of `roots` over Depends and Pre-Depends, minus `excluded`, sorted by name."""
    found: dict[str, Package] = {}
    unused_exclusions = set(excluded)
    pending = list(roots)
    while pending:
        name = pending.pop(0)
        if name in found:
            continue
        if name in excluded:
            unused_exclusions.discard(name)
            continue
        record = show(name)
        found[name] = Package(name, record["Version"], record["Architecture"], record["SHA256"])
        for field in ("Pre-Depends", "Depends"):
            pending.extend(dependency_names(record.get(field, "")))
    if unused_exclusions:
        print(f"note: excluded but not needed by anything: {', '.join(sorted(unused_exclusions))}", file=sys.stderr)
    return [found[name] for name in sorted(found)]


def format_lock(packages: list[Package], release: str, architecture: str) -> str:
    header = [
        "# Pinned Debian packages of the container images' runtime layer (tools/oci/defs.bzl).",
        f"# Generated from {Path(SOURCE).name} by `{COMMAND}`; do not edit.",
        f"# release: {release}, architecture: {architecture}",
        "#",
        "# package version architecture sha256",
    ]
    return "\n".join(header + [p.lock_line() for p in packages]) + "\n"


def apt_show(name: str) -> dict[str, str]:
    result = subprocess.run(
        ["apt-cache", "show", "--no-all-versions", name], capture_output=True, text=True, check=False
    )
    record = parse_record(result.stdout) if result.returncode == 0 else {}
    if record.get("Package") != name or not all(k in record for k in ("Version", "Architecture", "SHA256")):
        raise LockError(
            f"apt-cache knows no installable package {name!r} ({result.stderr.strip() or 'no record'}). "
            f"If it is virtual, name the package that provides it in {SOURCE}, or exclude it with -{name}; "
            "if the apt lists are missing, run `apt-get update` first."
        )
    return record


def os_release(key: str) -> str:
    for line in Path("/etc/os-release").read_text(encoding="utf-8").splitlines():
        k, _, value = line.partition("=")
        if k == key:
            return value.strip().strip('"')
    return "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=SOURCE, help="the package list (workspace-relative)")
    parser.add_argument("--lock", default=LOCK, help="the lock file to write (workspace-relative)")
    args = parser.parse_args()

    workspace = os.environ.get("BUILD_WORKSPACE_DIRECTORY")
    if not workspace:
        sys.exit(f"start this with `{COMMAND}`")
    os.chdir(workspace)
    architecture = subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        roots, excluded = parse_source(Path(args.source).read_text(encoding="utf-8"))
        packages = resolve(roots, excluded, apt_show)
    except LockError as error:
        sys.exit(f"debian_packages.update: {error}")
    Path(args.lock).write_text(format_lock(packages, os_release("VERSION_CODENAME"), architecture), encoding="utf-8")
    print(f"wrote {args.lock}: {len(packages)} packages", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
