"""Runs the image's own Python interpreter on the build machine, to compile .pyc files for the image.

The interpreter is started through the image's dynamic loader with the image's library
directories, so it uses the image's libc, libpython and standard library, never the build
machine's: the .pyc files match the interpreter that will load them, whatever Python runs
Bazel. (It needs a build machine of the image's architecture.)
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from tools.oci import elf


def resolve_in_root(root: Path, path: str) -> Path:
    """`path` inside the tree `root` with symbolic links followed as if `root` were `/`."""
    parts = list(PurePosixPath(path).parts[1:])
    current = root
    for _ in range(64):
        if not parts:
            return current
        part = parts.pop(0)
        if part == "..":
            current = current.parent if current != root else root
            continue
        candidate = current / part
        if candidate.is_symlink():
            target = os.readlink(candidate)
            if target.startswith("/"):
                current = root
            parts = list(PurePosixPath(target.lstrip("/")).parts) + parts
        else:
            current = candidate
    raise ValueError(f"{path}: too many symbolic links under {root}")


def unpack(layer: Path, dest: Path) -> None:
    """Unpacks one of our own layer tarballs (files, directories, symbolic links) into `dest`."""
    with tarfile.open(layer) as tar:
        for member in tar:
            path = dest / member.name
            if member.isdir():
                path.mkdir(parents=True, exist_ok=True)
            elif member.issym():
                path.symlink_to(member.linkname)
            elif member.isfile():
                source = tar.extractfile(member)
                assert source is not None
                with source, path.open("wb") as f:
                    shutil.copyfileobj(source, f)
                path.chmod(member.mode & 0o755)
            else:
                raise ValueError(f"{layer}: unexpected member {member.name}")


class ImagePython:
    """The interpreter at `python` (an image path) of the root file system unpacked at `root`."""

    def __init__(self, root: Path, python: str) -> None:
        root = root.absolute()
        self.root = root
        self.executable = resolve_in_root(root, python)
        loader = elf.interpreter(self.executable.read_bytes())
        if loader is None:
            raise ValueError(f"{python}: statically linked; expected a dynamically linked interpreter")
        self.loader = resolve_in_root(root, loader)
        library_dirs = sorted(root.glob("lib/*-linux-gnu")) + sorted(root.glob("usr/lib/*-linux-gnu"))
        self.library_path = ":".join(str(d) for d in [*library_dirs, root / "lib", root / "usr/lib"])

    @classmethod
    @contextlib.contextmanager
    def from_layer(cls, layer: Path, python: str, scratch: Path) -> Iterator[ImagePython]:
        """The interpreter of a runtime layer tarball, unpacked for the duration of the block."""
        with tempfile.TemporaryDirectory(prefix="image-python-", dir=scratch) as tmp:
            unpack(layer, Path(tmp))
            yield cls(Path(tmp), python)

    def run(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        command = [str(self.loader), "--library-path", self.library_path, str(self.executable), "-S", *args]
        # Constant sets and frozensets are marshalled in hash order: fix the seed.
        env = {"PYTHONHASHSEED": "0", "LC_ALL": "C.UTF-8"}
        return subprocess.run(command, env=env, capture_output=True, text=True, check=False)

    def compile(self, pycompile: Path, sources: list[tuple[Path, str]], out_dir: Path) -> list[str]:
        """Compiles (source file, image path) pairs; returns the image paths of the .pyc files in `out_dir`."""
        out_dir = out_dir.absolute()
        out_dir.mkdir(parents=True, exist_ok=True)
        jobs = out_dir / "jobs.json"
        jobs.write_text(json.dumps([[str(src.absolute()), dest] for src, dest in sources]), encoding="utf-8")
        result = self.run([str(pycompile.absolute()), str(jobs), str(out_dir)])
        jobs.unlink()
        if result.returncode != 0:
            raise RuntimeError(f"compiling .pyc files with the image's {self.executable} failed:\n{result.stderr}")
        if result.stderr:
            print(result.stderr, end="")
        compiled: list[str] = json.loads(result.stdout)
        return compiled
