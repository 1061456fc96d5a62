"""`bazel run //tools/lint:ruff -- ARGS`: the locked ruff, run in the workspace.

    bazel run //tools/lint:ruff -- check --fix    apply ruff's fixes
    bazel run //tools/lint:ruff -- format         reformat
    bazel run //tools/lint:ruff -- check FILE     check one file

Without ARGS it runs `check`. Paths are relative to the workspace root; the settings are
pyproject.toml's, as in //tools/lint:ruff_test.
"""

from __future__ import annotations

import os
import sys

from ruff import find_ruff_bin


def main(argv: list[str]) -> int:
    workspace = os.environ.get("BUILD_WORKSPACE_DIRECTORY")
    if not workspace:
        print("run me with `bazel run //tools/lint:ruff -- ARGS`", file=sys.stderr)
        return 2
    os.chdir(workspace)
    binary = find_ruff_bin()
    os.execv(binary, [binary, *(argv or ["check"])])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
