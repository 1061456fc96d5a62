"""pytest plugin: no test skips unnoticed. Loaded by pytest_main into every py_pytest_test.

Bazel reports a target whose tests skipped as PASSED. So where every test must run (CI:
`--config=ci` sets TICKETFLOW_REQUIRE_ALL_TESTS=1 in the tests' environment) a skip is turned
into a failure that names its reason. Elsewhere a skip stays a skip, as on a developer's
machine without podman, but it is said loudly: a banner in the test log, and the reasons in
Bazel's test warnings file (test.warnings beside test.log; the Build Event Protocol carries it).
Expected failures (xfail) are not skips and are left alone.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Mapping

import pytest

REQUIRE_ALL_TESTS = "TICKETFLOW_REQUIRE_ALL_TESTS"

_skipped = pytest.StashKey[list[str]]()


def all_tests_required(environ: Mapping[str, str]) -> bool:
    return environ.get(REQUIRE_ALL_TESTS, "") not in {"", "0"}


def _reason(report: pytest.TestReport) -> str:
    if isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    return str(report.longrepr)


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_skipped] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if not report.skipped or hasattr(report, "wasxfail"):
        return report
    reason = _reason(report)
    if all_tests_required(os.environ):
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid} would be skipped, and {REQUIRE_ALL_TESTS} is set (bazel test --config=ci): "
            f"here every test must run.\nWhy it would skip: {reason}"
        )
    else:
        item.config.stash[_skipped].append(f"{item.nodeid}: {reason}")
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    skipped = config.stash[_skipped]
    if not skipped:
        return
    terminalreporter.section(f"{len(skipped)} TEST(S) SKIPPED: Bazel reports this target PASSED anyway", sep="!")
    for line in skipped:
        terminalreporter.write_line(f"SKIPPED {line}")
    terminalreporter.write_line(f"Under `--config=ci` ({REQUIRE_ALL_TESTS}=1) these skips fail the test.")


def pytest_sessionfinish(session: pytest.Session) -> None:
    skipped = session.config.stash[_skipped]
    warnings_file = os.environ.get("TEST_WARNINGS_OUTPUT_FILE")
    if skipped and warnings_file:
        with open(warnings_file, "a", encoding="utf-8") as f:
            f.writelines(f"SKIPPED {line}\n" for line in skipped)
