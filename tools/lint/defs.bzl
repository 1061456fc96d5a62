"""`py_files()`: a package's Python files, for the lint and type checks of //tools/lint.

    load("//tools/lint:defs.bzl", "py_files")

    py_files()

Every package with Python files calls it once and is listed in `_FIRST_PARTY` of
tools/lint/BUILD.bazel; `//tools/lint:sources_test` fails for a file no package hands over.
"""

def py_files(name = "py_files"):
    """Every `.py` file of the calling package (a glob does not enter subpackages).

    Args:
      name: the filegroup's name; //tools/lint refers to `py_files`.
    """
    native.filegroup(
        name = name,
        srcs = native.glob(["**/*.py"]),
        visibility = ["//tools/lint:__pkg__"],
    )
