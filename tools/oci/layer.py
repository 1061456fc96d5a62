"""Builds an image layer from a py_binary's runfiles: the files, laid out as `bazel run` does, plus .pyc files.

    layer.py --out LAYER.tar --prefix /app --workspace ticketflow \\
        --runtime runtime.tar --python /usr/bin/python3.11 --pycompile pycompile.py --manifest MANIFEST

MANIFEST has one runfile a line, `SHORT_PATH<TAB>PATH`: Bazel's short path (`pkg/file`
for this workspace, `../repo/file` for an external repository) and where the file is now.
A file lands at PREFIX/WORKSPACE/pkg/file or PREFIX/repo/file, the runfiles tree's own
layout, so the import roots of the binary are the same directories under PREFIX.

.pyc files that came with the inputs (pip writes them, naming the build machine's paths) are
left out, and so is the binary's launcher (--skip), a script for the build machine's Python.
Every .py file instead gets a .pyc compiled by the image's interpreter from the runtime
layer, naming its path in the image. Shared objects lose their debug information
(elf.without_debug_info; uvloop's wheel carries 11.7 MB of it), which the loader never reads.
"""

from __future__ import annotations

import argparse
import os
import stat
import tempfile
from pathlib import Path

from tools.oci import elf
from tools.oci.image_python import ImagePython
from tools.oci.tarball import Layer


def image_location(short_path: str, prefix: str, workspace: str) -> str:
    if short_path.startswith("../"):
        return f"{prefix}/{short_path[3:]}"
    return f"{prefix}/{workspace}/{short_path}"


def read_manifest(path: Path) -> list[tuple[str, Path]]:
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line:
            short_path, _, location = line.partition("\t")
            entries.append((short_path, Path(location)))
    return entries


def is_bytecode(short_path: str) -> bool:
    return "/__pycache__/" in short_path or short_path.endswith((".pyc", ".pyo"))


def add_runfile(layer: Layer, dest: str, location: Path) -> None:
    with location.open("rb") as f:
        is_elf = elf.is_elf(f.read(4))
    stripped = elf.without_debug_info(location.read_bytes()) if is_elf else None
    if stripped is None:
        layer.add_file(dest, location)
    else:
        mode = 0o755 if os.stat(location).st_mode & stat.S_IXUSR else 0o644
        layer.add_bytes(dest, stripped, mode)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--runtime", type=Path, required=True, help="the runtime layer (its interpreter compiles)")
    parser.add_argument("--python", required=True)
    parser.add_argument("--pycompile", type=Path, required=True)
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--skip", action="append", default=[], help="a short path to leave out (the launcher)")
    args = parser.parse_args()

    layer = Layer()
    sources: list[tuple[Path, str]] = []
    for short_path, location in read_manifest(args.manifest):
        if is_bytecode(short_path) or short_path in args.skip:
            continue
        dest = image_location(short_path, args.prefix, args.workspace)
        add_runfile(layer, dest, location)
        if dest.endswith(".py"):
            sources.append((location, dest))

    with tempfile.TemporaryDirectory(prefix="layer-", dir=args.out.parent) as tmp:
        pyc_dir = Path(tmp) / "pyc"
        with ImagePython.from_layer(args.runtime, args.python, Path(tmp)) as python:
            compiled = python.compile(args.pycompile, sorted(sources, key=lambda s: s[1]), pyc_dir)
        for pyc in compiled:
            layer.add_file(pyc, pyc_dir / pyc.lstrip("/"), 0o644)
        layer.write(args.out)


if __name__ == "__main__":
    main()
