"""Layer tarballs are reproducible: same entries, same bytes, whatever the order they were added in."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import pytest

from tools.oci.tarball import MTIME, Layer, image_path


def _write(layer: Layer, path: Path) -> str:
    layer.write(path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_same_entries_in_any_order_give_the_same_bytes(tmp_path: Path) -> None:
    source = tmp_path / "source.txt"
    source.write_text("hello")
    long_name = "app/" + "x" * 120 + "/module.py"

    first = Layer()
    first.add_file("app/a/b.txt", source)
    first.add_bytes(long_name, b"pass\n")
    first.add_symlink("app/link", "a/b.txt")

    second = Layer()
    second.add_symlink("app/link", "a/b.txt")
    second.add_bytes(long_name, b"pass\n")
    second.add_file("/app/a/b.txt", source)

    source.touch()  # a newer modification time on disk changes nothing
    assert _write(first, tmp_path / "1.tar") == _write(second, tmp_path / "2.tar")


def test_entries_are_sorted_with_parents_fixed_times_numeric_owners_and_no_pax_headers(tmp_path: Path) -> None:
    layer = Layer()
    layer.add_bytes("usr/lib/x.so", b"\x7fELF", mode=0o644)
    layer.add_dir("home/user", 0o700, uid=65532, gid=65532)
    out = tmp_path / "layer.tar"
    layer.write(out)
    with tarfile.open(out) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["home", "home/user", "usr", "usr/lib", "usr/lib/x.so"]
        assert {m.mtime for m in members} == {MTIME}
        assert {(m.uname, m.gname) for m in members} == {("", "")}
        assert (members[1].uid, members[1].mode) == (65532, 0o700)
        assert tar.pax_headers == {} and all(not m.pax_headers for m in members)


def test_two_different_entries_at_one_path_are_refused() -> None:
    layer = Layer()
    layer.add_bytes("etc/passwd", b"a")
    with pytest.raises(ValueError, match="/etc/passwd"):
        layer.add_bytes("etc/passwd", b"b")


@pytest.mark.parametrize("path", ["", "/", "../etc", "a/../../b"])
def test_paths_outside_the_image_are_refused(path: str) -> None:
    with pytest.raises(ValueError):
        image_path(path)
