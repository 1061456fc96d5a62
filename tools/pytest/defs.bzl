"""`py_pytest_test`: a `py_test` that runs its test files with pytest.

    load("//tools/pytest:defs.bzl", "py_pytest_test")

    py_pytest_test(
        name = "domain_test",
        srcs = ["domain_test.py"],
        deps = [":domain"],
    )

Every target shares `//tools/pytest:pytest_main.py` (see its docstring for the contract) and
the pytest configuration in `//:pyproject.toml` (strict markers, warnings as errors).
"""

_MAIN = "//tools/pytest:pytest_main.py"

def py_pytest_test(name, srcs, deps = [], data = [], args = [], plugins = [], postgres = False, tags = [], **kwargs):
    """A py_test running `srcs` (and only those) with pytest.

    Args:
      name: target name; by convention `<module>_test`.
      srcs: test files; each is passed to pytest explicitly. conftest.py files go in deps.
      deps: libraries the tests import.
      data: runtime files.
      args: extra pytest arguments, before the test files.
      plugins: pytest plugin modules to load with `-p` (put their libraries in deps), e.g.
        "tools.testing.postgres". Loaded before collection, so their fixtures serve every file.
      postgres: the tests start real PostgreSQL servers (`//tools/testing:postgres`'s fixtures).
        Such tests run outside Bazel's sandbox: as root, PostgreSQL must run as the `postgres`
        user, and the sandbox's user namespace cannot switch to a user it does not map.
      tags: test tags.
      **kwargs: passed to py_test (size, tags, env, shard_count, ...).
    """
    if postgres:
        plugins = plugins + ["tools.testing.postgres"]
        deps = deps + ["//tools/testing:postgres"]
        tags = tags + ["no-sandbox"]
    native.py_test(
        name = name,
        srcs = srcs + [_MAIN],
        main = _MAIN,
        args = ["-p%s" % plugin for plugin in plugins] + args + ["$(location %s)" % src for src in srcs],
        data = data + ["//:pyproject.toml"],
        deps = deps + [
            "//tools/pytest:plugins",
            "@pypi//pytest",
            "@pypi//pytest_asyncio",
        ],
        python_version = "PY3",
        srcs_version = "PY3",
        tags = tags,
        **kwargs
    )
