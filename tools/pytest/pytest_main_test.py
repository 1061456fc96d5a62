"""Tests of the arguments pytest_main builds from Bazel's test environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tools.pytest import pytest_main, skips
from tools.pytest.pytest_main import pytest_args


def test_test_files_are_passed_explicitly_after_options() -> None:
    args = pytest_args(["a_test.py", "b_test.py"], {})
    assert args[-2:] == ["a_test.py", "b_test.py"]
    assert args[args.index("-p") : args.index("-p") + 2] == ["-p", "no:cacheprovider"]


def test_junit_xml_goes_where_bazel_asks() -> None:
    assert "--junitxml=/out/test.xml" in pytest_args(["t.py"], {"XML_OUTPUT_FILE": "/out/test.xml"})


def test_test_filter_becomes_keyword_expression() -> None:
    args = pytest_args(["t.py"], {"TESTBRIDGE_TEST_ONLY": "last_seat"})
    assert args[args.index("-k") + 1] == "last_seat"


def test_sharding_is_acknowledged_and_enabled(tmp_path: Path) -> None:
    status = tmp_path / "shard_status"
    args = pytest_args(["t.py"], {"TEST_SHARD_STATUS_FILE": str(status)})
    assert status.exists()
    assert "tools.pytest.sharding" in args


def _run_pytest_main(tmp_path: Path, test_file: str, source: str, **env: str) -> subprocess.CompletedProcess[str]:
    """pytest_main on one test file in a fresh directory, as Bazel would run it."""
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    (tmp_path / test_file).write_text(source)
    environ = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    for name in ("XML_OUTPUT_FILE", "TEST_SHARD_STATUS_FILE", "TEST_WARNINGS_OUTPUT_FILE", skips.REQUIRE_ALL_TESTS):
        environ.pop(name, None)
    return subprocess.run(
        [sys.executable, pytest_main.__file__, test_file],
        cwd=tmp_path,
        env=dict(environ, **env),
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_run_that_collects_nothing_fails(tmp_path: Path) -> None:
    """A py_test whose file holds no test must not pass: pytest's exit 5 is passed through."""
    run = _run_pytest_main(tmp_path, "empty_test.py", "VALUE = 1\n")
    assert run.returncode == 5, run.stdout + run.stderr


_SKIPPING_TEST = """\
import pytest

def test_needs_podman():
    pytest.skip("podman is not installed")
"""


def test_a_skip_fails_where_every_test_is_required(tmp_path: Path) -> None:
    run = _run_pytest_main(tmp_path, "skip_test.py", _SKIPPING_TEST, **{skips.REQUIRE_ALL_TESTS: "1"})
    assert run.returncode == 1, run.stdout + run.stderr
    assert "podman is not installed" in run.stdout
    assert "1 failed" in run.stdout


def test_a_skip_elsewhere_passes_but_says_so(tmp_path: Path) -> None:
    warnings = tmp_path / "test.warnings"
    run = _run_pytest_main(tmp_path, "skip_test.py", _SKIPPING_TEST, TEST_WARNINGS_OUTPUT_FILE=str(warnings))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 TEST(S) SKIPPED" in run.stdout
    assert "podman is not installed" in warnings.read_text()


def test_expected_failures_are_not_skips(tmp_path: Path) -> None:
    source = "import pytest\n\n@pytest.mark.xfail(strict=True)\ndef test_known_bug():\n    assert False\n"
    run = _run_pytest_main(tmp_path, "xfail_test.py", source, **{skips.REQUIRE_ALL_TESTS: "1"})
    assert run.returncode == 0, run.stdout + run.stderr
