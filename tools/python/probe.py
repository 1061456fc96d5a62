"""Prints what the Python toolchain repository rule records about an interpreter.

Run by tools/python/interpreter.bzl with the interpreter being probed; one `key=value` per line.
"""

from __future__ import annotations

import platform
import sys
import sysconfig


def main() -> None:
    print(f"version={platform.python_version()}")
    print(f"major_minor={sys.version_info.major}.{sys.version_info.minor}")
    print(f"implementation={sys.implementation.name}")
    print(f"executable={sys.executable}")
    print(f"platform={sysconfig.get_platform()}")


if __name__ == "__main__":
    main()
