"""Where a Bazel-built binary is at run time, given its workspace path.

`bazel run` and `bazel test` start programs inside their runfiles tree; the binaries a
target lists in `data` are there under `<workspace name>/<package>/<name>`. Bazel's Python
launcher says where the tree is with TEST_SRCDIR (tests), RUNFILES_DIR, or
RUNFILES_MANIFEST_FILE (`<binary>.runfiles_manifest`, next to `<binary>.runfiles/`).
"""

from __future__ import annotations

import os
from pathlib import Path

WORKSPACE = "ticketflow"


def _roots() -> list[Path]:
    roots = []
    if root := os.environ.get("TEST_SRCDIR") or os.environ.get("RUNFILES_DIR"):
        roots.append(Path(root))
    manifest = os.environ.get("RUNFILES_MANIFEST_FILE", "")
    if manifest.endswith(".runfiles_manifest"):
        roots.append(Path(manifest.removesuffix("_manifest")))
    elif manifest.endswith("/MANIFEST"):
        roots.append(Path(manifest).parent)
    return roots


def runfile(path: str) -> str:
    """Absolute path of a runfile given by its workspace-relative path."""
    workspace = os.environ.get("TEST_WORKSPACE", WORKSPACE)
    candidates = [root / workspace / path for root in _roots()]
    # This file itself is in the runfiles tree, at <root>/<workspace>/tools/supervisor/.
    candidates.append(Path(__file__).absolute().parents[2] / path)
    candidates.append(Path.cwd() / path)
    for candidate in candidates:
        if candidate.exists():
            return str(candidate.absolute())
    raise FileNotFoundError(f"{path} is not in the runfiles; add it to the target's data")
