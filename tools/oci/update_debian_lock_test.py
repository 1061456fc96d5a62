"""The Debian package lock: the package list, dependency closure and lock format, and what the
fetcher does when apt cannot provide the pinned packages."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tools.oci import fetch_debs
from tools.oci.fetch_debs import Pin, lock_release, parse_lock
from tools.oci.update_debian_lock import (
    LockError,
    Package,
    dependency_names,
    format_lock,
    parse_record,
    parse_source,
    resolve,
)

INDEX = {
    "python3.11-minimal": {
        "Version": "3.11.2-6",
        "Architecture": "amd64",
        "SHA256": "a" * 64,
        "Pre-Depends": "libc6 (>= 2.35)",
        "Depends": "libpython3.11-minimal (= 3.11.2-6), zlib1g (>= 1:1.2.0)",
    },
    "libpython3.11-minimal": {
        "Version": "3.11.2-6",
        "Architecture": "amd64",
        "SHA256": "b" * 64,
        "Depends": "libc6, libssl3",
    },
    "libc6": {"Version": "2.36-9", "Architecture": "amd64", "SHA256": "c" * 64, "Depends": "libgcc-s1"},
    "libgcc-s1": {
        "Version": "12.2.0-14",
        "Architecture": "amd64",
        "SHA256": "d" * 64,
        "Depends": "gcc-12-base (= 12.2.0-14), libc6",
    },
    "libssl3": {"Version": "3.0.22-1", "Architecture": "amd64", "SHA256": "e" * 64, "Depends": "libc6:any"},
    "zlib1g": {"Version": "1:1.2.13.dfsg-1", "Architecture": "amd64", "SHA256": "f" * 64, "Depends": "libc6"},
    "tzdata": {
        "Version": "2026f-0",
        "Architecture": "all",
        "SHA256": "0" * 64,
        "Depends": "debconf (>= 0.5) | debconf-2.0",
    },
}


def show(name: str) -> dict[str, str]:
    if name not in INDEX:
        raise LockError(f"unknown package {name}")
    return INDEX[name]


def test_the_package_list_has_roots_and_exclusions_with_comments() -> None:
    roots, excluded = parse_source("# header\npython3.11-minimal   # why\n\n-gcc-12-base  # why not\ntzdata\n")
    assert roots == ["python3.11-minimal", "tzdata"]
    assert excluded == {"gcc-12-base"}


def test_a_malformed_line_names_its_line_number() -> None:
    with pytest.raises(LockError, match=":2:"):
        parse_source("tzdata\nnot a package\n")


def test_dependencies_take_the_first_alternative_without_versions_or_architectures() -> None:
    assert dependency_names("libc6 (>= 2.34), debconf (>= 0.5) | debconf-2.0, libssl3:any, ") == [
        "libc6",
        "debconf",
        "libssl3",
    ]


def test_the_closure_follows_depends_and_pre_depends_minus_exclusions() -> None:
    packages = resolve(["python3.11-minimal", "tzdata"], {"gcc-12-base", "debconf"}, show)
    assert [p.name for p in packages] == [
        "libc6",
        "libgcc-s1",
        "libpython3.11-minimal",
        "libssl3",
        "python3.11-minimal",
        "tzdata",
        "zlib1g",
    ]


def test_an_unknown_dependency_stops_the_update() -> None:
    with pytest.raises(LockError):
        resolve(["tzdata"], set(), show)


def test_the_lock_reads_back_as_the_fetcher_pins() -> None:
    packages = [Package("zlib1g", "1:1.2.13.dfsg-1", "amd64", "f" * 64), Package("tzdata", "2026f-0", "all", "0" * 64)]
    pins = parse_lock(format_lock(packages, "bookworm", "amd64"))
    assert pins == [Pin("zlib1g", "1:1.2.13.dfsg-1", "amd64", "f" * 64), Pin("tzdata", "2026f-0", "all", "0" * 64)]
    assert pins[0].file_name == "zlib1g_1%3a1.2.13.dfsg-1_amd64.deb"
    assert lock_release(format_lock(packages, "bookworm", "amd64")) == "bookworm"


def test_a_record_joins_continuation_lines_and_stops_at_the_first_paragraph() -> None:
    record = parse_record("Package: a\nDescription: one\n two\n\nPackage: b\n")
    assert record == {"Package": "a", "Description": "one\ntwo"}


def test_packages_apt_cannot_provide_leave_the_images_out_unless_required(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(pins: list[Pin], into: Path, release: str | None) -> None:
        raise fetch_debs.Unavailable("no such version")

    monkeypatch.setattr(fetch_debs, "download", unavailable)
    lock = tmp_path / "debian_packages.lock"
    lock.write_text("libc6 2.36-9 amd64 " + "a" * 64 + "\n")
    argv = ["fetch_debs.py", "--lock", str(lock), "--out", str(tmp_path / "repo")]

    monkeypatch.setattr(sys, "argv", argv)
    assert fetch_debs.main() == 0
    assert "no such version" in (tmp_path / "repo" / "status.bzl").read_text()

    monkeypatch.setattr(sys, "argv", [*argv, "--require"])
    with pytest.raises(SystemExit, match="no such version"):
        fetch_debs.main()
