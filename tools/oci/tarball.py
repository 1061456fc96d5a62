"""Deterministic layer tarballs: the same entries give the same bytes, wherever and whenever written.

A `Layer` collects entries (files, directories, symbolic links) by their path in the image and
writes them sorted by path, every parent directory present, with a fixed modification time,
numeric owners only (no user or group names) and GNU long-name records instead of PAX headers,
which could carry times. File contents are read from disk or given as bytes.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

# 2000-01-01T00:00:00Z. Any constant works; a layer must not change when nothing in it changed.
MTIME = 946684800


@dataclass(frozen=True)
class Entry:
    path: str
    type: bytes  # tarfile.REGTYPE, DIRTYPE or SYMTYPE
    mode: int
    uid: int = 0
    gid: int = 0
    source: Path | None = None
    data: bytes | None = None
    target: str = ""

    def same_as(self, other: Entry) -> bool:
        return self == other or (
            self.source is not None
            and other.source is not None
            and self.type == other.type == tarfile.REGTYPE
            and (self.mode, self.uid, self.gid) == (other.mode, other.uid, other.gid)
            and self.source.read_bytes() == other.source.read_bytes()
        )


def image_path(path: str) -> str:
    """`path` as a tar member name: relative, normalized, never leaving the root."""
    parts = PurePosixPath("/" + path.strip("/")).parts[1:]
    if not parts or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"not a path inside the image: {path!r}")
    return "/".join(parts)


class Layer:
    """The entries of one image layer, written as a reproducible tar file."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}

    def __contains__(self, path: str) -> bool:
        return image_path(path) in self._entries

    def paths(self) -> list[str]:
        return sorted(self._entries)

    def _add(self, entry: Entry) -> None:
        existing = self._entries.get(entry.path)
        if existing is not None and not existing.same_as(entry):
            raise ValueError(f"two different entries for /{entry.path} in one layer")
        parent = PurePosixPath(entry.path).parent
        if str(parent) != "." and str(parent) not in self._entries:
            self.add_dir(str(parent))
        self._entries[entry.path] = entry

    def add_dir(self, path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> None:
        path = image_path(path)
        existing = self._entries.get(path)
        if existing is not None and existing.type == tarfile.DIRTYPE:
            # A directory named again (by a later package, or explicitly) takes the new mode and owner.
            self._entries[path] = Entry(path, tarfile.DIRTYPE, mode, uid, gid)
            return
        self._add(Entry(path, tarfile.DIRTYPE, mode, uid, gid))

    def add_file(self, path: str, source: Path, mode: int | None = None, uid: int = 0, gid: int = 0) -> None:
        if mode is None:
            mode = 0o755 if os.stat(source).st_mode & stat.S_IXUSR else 0o644
        self._add(Entry(image_path(path), tarfile.REGTYPE, mode, uid, gid, source=source))

    def add_bytes(self, path: str, data: bytes, mode: int = 0o644, uid: int = 0, gid: int = 0) -> None:
        self._add(Entry(image_path(path), tarfile.REGTYPE, mode, uid, gid, data=data))

    def add_symlink(self, path: str, target: str) -> None:
        self._add(Entry(image_path(path), tarfile.SYMTYPE, 0o777, target=target))

    def add_tree(self, root: Path, prefix: str = "") -> None:
        """Everything under `root` (files, directories, symbolic links) at `prefix` in the image."""
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                path = Path(dirpath) / name
                dest = f"{prefix}/{path.relative_to(root).as_posix()}"
                info = path.lstat()
                if stat.S_ISLNK(info.st_mode):
                    self.add_symlink(dest, os.readlink(path))
                elif stat.S_ISDIR(info.st_mode):
                    self.add_dir(dest, stat.S_IMODE(info.st_mode))
                elif stat.S_ISREG(info.st_mode):
                    self.add_file(dest, path, stat.S_IMODE(info.st_mode))
                else:
                    raise ValueError(f"{path}: only files, directories and symbolic links go into a layer")

    def write(self, out: Path) -> None:
        with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as tar:
            for path in sorted(self._entries):
                entry = self._entries[path]
                info = tarfile.TarInfo(path)
                info.type = entry.type
                info.mode = entry.mode
                info.uid, info.gid = entry.uid, entry.gid
                info.uname = info.gname = ""
                info.mtime = MTIME
                if entry.type == tarfile.SYMTYPE:
                    info.linkname = entry.target
                    tar.addfile(info)
                elif entry.type == tarfile.DIRTYPE:
                    tar.addfile(info)
                elif entry.data is not None:
                    info.size = len(entry.data)
                    tar.addfile(info, io.BytesIO(entry.data))
                else:
                    assert entry.source is not None
                    with entry.source.open("rb") as f:
                        info.size = os.fstat(f.fileno()).st_size
                        tar.addfile(info, f)
