"""Tests of the arguments pytest_main builds from Bazel's test environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tools.pytest import pytest_main
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


def test_a_run_that_collects_nothing_fails(tmp_path: Path) -> None:
    """A py_test whose file holds no test must not pass: pytest's exit 5 is passed through."""
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    (tmp_path / "empty_test.py").write_text("VALUE = 1\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    env.pop("XML_OUTPUT_FILE", None)
    env.pop("TEST_SHARD_STATUS_FILE", None)
    run = subprocess.run(
        [sys.executable, pytest_main.__file__, "empty_test.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 5, run.stdout + run.stderr
