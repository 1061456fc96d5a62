"""The one pytest entry point behind every `py_pytest_test` target.

Follows the contract of aspect's rules_py pytest_main: the test files come explicitly on the
command line (the macro passes them), results go to Bazel's JUnit XML file, `--test_filter`
becomes `-k`, pytest's cache stays out of the read-only runfiles, and pytest's exit status is
Bazel's. Exit status 5 ("no tests collected") is kept as a failure: a test target that runs
nothing must not pass. Nor may one that skips where every test must run (`--config=ci`; see
tools/pytest/skips.py).
"""

from __future__ import annotations

import os
import sys

import pytest


def pytest_args(test_files: list[str], environ: dict[str, str]) -> list[str]:
    # tools.pytest.skips: a skip fails under --config=ci and is loud elsewhere (see its docstring).
    args = ["-c", "pyproject.toml", "--rootdir=.", "-p", "no:cacheprovider", "-p", "tools.pytest.skips"]
    if xml := environ.get("XML_OUTPUT_FILE"):
        args.append(f"--junitxml={xml}")
    if test_filter := environ.get("TESTBRIDGE_TEST_ONLY"):
        args += ["-k", test_filter]
    # Bazel's sharding protocol: say we support it, then run every Nth test.
    if shard_status := environ.get("TEST_SHARD_STATUS_FILE"):
        open(shard_status, "w").close()
        args += ["-p", "tools.pytest.sharding"]
    return args + test_files


def main() -> int:
    test_files = sys.argv[1:]
    if not test_files:
        print("pytest_main: no test files given (the py_pytest_test macro passes them)", file=sys.stderr)
        return 2
    return int(pytest.main(pytest_args(test_files, dict(os.environ))))


if __name__ == "__main__":
    sys.exit(main())
