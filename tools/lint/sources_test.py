"""Fails when a Python file of the workspace is not among the files the lint checks receive.

//tools/lint:ruff_test and :mypy_test see only the packages listed in tools/lint/BUILD.bazel.
This test gets the same files (as arguments) and walks the real source tree, found through the
runfiles' link to pyproject.toml, for every *.py file Bazel would see: a package added without
its `py_files` filegroup, or one not listed, is named here instead of going unchecked.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Not part of the workspace's packages: Bazel's output links, VCS data, and .bazelignore's entries.
_SKIP_NAMES = {".git", "__pycache__"}


def ignored_dirs(root: Path) -> set[Path]:
    bazelignore = root / ".bazelignore"
    if not bazelignore.is_file():
        return set()
    lines = bazelignore.read_text(encoding="utf-8").splitlines()
    return {root / line.strip() for line in lines if line.strip() and not line.startswith("#")}


def python_files(root: Path) -> set[str]:
    skip = ignored_dirs(root)
    found: set[str] = set()
    for directory, subdirs, files in os.walk(root):
        here = Path(directory)
        # os.walk does not follow links, so bazel-* (links into the output base) stay out.
        subdirs[:] = [
            d for d in subdirs if d not in _SKIP_NAMES and not d.startswith("bazel-") and here / d not in skip
        ]
        found.update(str((here / f).relative_to(root)) for f in files if f.endswith(".py"))
    return found


def main(argv: list[str]) -> int:
    checked = set(argv)
    if not checked:
        print("sources_test: no files given (BUILD.bazel passes them)", file=sys.stderr)
        return 2
    root = Path(os.path.realpath("pyproject.toml")).parent
    missing = sorted(python_files(root) - checked)
    if missing:
        print(
            f"Python files in {root} that the lint checks do not see:\n"
            + "".join(f"  {path}\n" for path in missing)
            + "Call py_files() (tools/lint/defs.bzl) in their package's BUILD.bazel "
            "and list its :py_files in _FIRST_PARTY of tools/lint/BUILD.bazel.",
            file=sys.stderr,
        )
        return 1
    print(f"all {len(checked)} Python files of {root} are checked")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
