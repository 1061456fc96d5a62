"""Where a Bazel-built binary is at run time, given its workspace path.

`bazel run` and `bazel test` start programs inside their runfiles tree, with RUNFILES_DIR
(run) or TEST_SRCDIR (test) pointing at it; the binaries a target lists in `data` are there
under `<workspace name>/<package>/<name>`.
"""

from __future__ import annotations

import os
from pathlib import Path

WORKSPACE = "ticketflow"


def runfile(path: str) -> str:
    """Absolute path of a runfile given by its workspace-relative path."""
    candidates = []
    if root := os.environ.get("TEST_SRCDIR") or os.environ.get("RUNFILES_DIR"):
        candidates.append(Path(root) / os.environ.get("TEST_WORKSPACE", WORKSPACE) / path)
    candidates.append(Path.cwd() / path)
    for candidate in candidates:
        if candidate.exists():
            return str(candidate.absolute())
    raise FileNotFoundError(f"{path} is not in the runfiles; add it to the target's data")
