"""Reads an image archive written by image.py: its configuration and the file system its layers stack up to.

For tests: what a container engine would see, without one. Our layers have no whiteouts, so a
later layer's entry simply replaces an earlier one at the same path.
"""

from __future__ import annotations

import json
import posixpath
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.oci import elf

# Where the dynamic loader looks when a file names no search path (Debian, x86-64, no ld.so.cache).
DEFAULT_LIBRARY_DIRS = ("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib", "usr/lib")


@dataclass(frozen=True)
class ImageFile:
    path: str
    layer: int
    member: tarfile.TarInfo


class ImageArchive:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._outer = tarfile.open(path)  # noqa: SIM115 (closed by close())
        manifest = json.loads(self._read_outer("manifest.json"))
        if len(manifest) != 1:
            raise ValueError(f"{path}: expected one image, found {len(manifest)}")
        self.tags: list[str] = manifest[0]["RepoTags"]
        self.config_bytes = self._read_outer(manifest[0]["Config"])
        self.config: dict[str, Any] = json.loads(self.config_bytes)
        self._layers = [self._open_layer(name) for name in manifest[0]["Layers"]]
        self.files: dict[str, ImageFile] = {}
        for index, layer in enumerate(self._layers):
            for member in layer.getmembers():
                self.files[member.name.rstrip("/")] = ImageFile(member.name.rstrip("/"), index, member)

    def _read_outer(self, name: str) -> bytes:
        member = self._outer.extractfile(name)
        if member is None:
            raise ValueError(f"{self.path}: {name} is not a file")
        return member.read()

    def _open_layer(self, name: str) -> tarfile.TarFile:
        fileobj = self._outer.extractfile(name)
        if fileobj is None:
            raise ValueError(f"{self.path}: layer {name} is not a file")
        return tarfile.open(fileobj=fileobj)

    def close(self) -> None:
        for layer in self._layers:
            layer.close()
        self._outer.close()

    def __enter__(self) -> ImageArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def layer_count(self) -> int:
        return len(self._layers)

    def read(self, path: str) -> bytes:
        found = self.files[path.strip("/")]
        data = self._layers[found.layer].extractfile(found.member)
        if data is None:
            raise ValueError(f"/{path} is not a regular file")
        return data.read()

    def resolve(self, path: str) -> str | None:
        """The path `path` leads to after following symbolic links in the image, if it exists."""
        parts = [p for p in path.split("/") if p]
        current: list[str] = []
        for _ in range(64):
            if not parts:
                return "/".join(current)
            part = parts.pop(0)
            if part == "..":
                current = current[:-1]
                continue
            found = self.files.get("/".join([*current, part]))
            if found is None:
                return None
            if found.member.issym():
                target = found.member.linkname
                if target.startswith("/"):
                    current = []
                parts = [p for p in target.split("/") if p] + parts
            else:
                current.append(part)
        raise ValueError(f"{path}: too many symbolic links")

    def regular_files(self) -> Iterator[tuple[str, bytes]]:
        for path, found in sorted(self.files.items()):
            if found.member.isfile():
                yield path, self.read(path)

    def missing_libraries(self) -> list[str]:
        """`file: library` for every library an ELF file of the image needs and the image lacks."""
        missing = []
        for path, data in self.regular_files():
            if not elf.is_elf(data):
                continue
            loader = elf.interpreter(data)
            if loader is not None and self.resolve(loader) is None:
                missing.append(f"/{path}: its loader {loader}")
            needs = elf.dynamic_needs(data)
            origin = posixpath.dirname("/" + path)
            dirs = [d.replace("$ORIGIN", origin).replace("${ORIGIN}", origin) for d in needs.search_paths]
            dirs += ["/" + d for d in DEFAULT_LIBRARY_DIRS]
            for library in needs.needed:
                if not any(self.resolve(posixpath.normpath(f"{d}/{library}")) for d in dirs):
                    missing.append(f"/{path}: {library}")
        return missing

    def files_containing(self, needle: bytes) -> list[str]:
        return [f"/{path}" for path, data in self.regular_files() if needle in data]
