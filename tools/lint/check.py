"""Runs ruff or mypy over TicketFlow's first-party Python code: the lint and type-check tests.

    check.py ruff FILE...    `ruff check` and `ruff format --check` (diff shown) over FILE...
    check.py mypy FILE...    `mypy --strict` over FILE... (the generated stubs' .pyi included)

//tools/lint:ruff_test and :mypy_test run it with every first-party file as data (BUILD.bazel
lists them), from the runfiles copy of the workspace, so the settings in pyproject.toml apply.
Its exit status is the tools': any violation fails the test. It refuses to run on no files, so
a target that lost its sources cannot pass without checking anything.
"""

from __future__ import annotations

import os
import subprocess
import sys

from mypy import api as mypy_api
from ruff import find_ruff_bin


def ruff(files: list[str]) -> int:
    binary = find_ruff_bin()
    status = 0
    for command in (["check", "--no-cache"], ["format", "--check", "--diff", "--no-cache"]):
        print(f"$ ruff {' '.join(command)} ({len(files)} files)", flush=True)
        status |= subprocess.run([binary, *command, *files], check=False).returncode
    return status


def mypy(files: list[str]) -> int:
    # A generated module comes as foo_pb2.py and its stub foo_pb2.pyi: mypy reads the stub.
    stubs = {f[:-1] for f in files if f.endswith(".pyi")}
    sources = [f for f in files if f not in stubs]
    # The runfiles are read-only; mypy's cache goes to the test's own temporary directory.
    cache = os.path.join(os.environ.get("TEST_TMPDIR", "/tmp"), "mypy_cache")
    print(f"$ mypy --strict ({len(sources)} files)", flush=True)
    stdout, stderr, status = mypy_api.run(["--strict", f"--cache-dir={cache}", *sources])
    sys.stdout.write(stdout)
    sys.stderr.write(stderr)
    return status


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in {"ruff", "mypy"}:
        print(__doc__, file=sys.stderr)
        return 2
    tool, files = argv[0], argv[1:]
    return ruff(files) if tool == "ruff" else mypy(files)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
