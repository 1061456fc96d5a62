"""ELF reading and debug-information removal, on a real extension module (uvloop's, which ships 11 MB of it)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools.oci import elf


@pytest.fixture(scope="module")
def uvloop_package() -> Path:
    spec = importlib.util.find_spec("uvloop")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations)))


def _loop_module(package: Path) -> Path:
    return next(package.glob("loop.*.so"))


def test_debug_information_goes_and_what_the_loader_reads_stays(uvloop_package: Path) -> None:
    data = _loop_module(uvloop_package).read_bytes()
    stripped = elf.without_debug_info(data)
    assert stripped is not None
    assert len(stripped) < len(data) - 10_000_000
    assert elf.dynamic_needs(stripped) == elf.dynamic_needs(data)
    assert elf.interpreter(stripped) == elf.interpreter(data)
    assert elf.without_debug_info(stripped) is None  # nothing left to remove


def test_the_stripped_module_still_imports_and_runs(uvloop_package: Path, tmp_path: Path) -> None:
    copy = tmp_path / "uvloop"
    shutil.copytree(uvloop_package, copy)
    module = _loop_module(copy)
    stripped = elf.without_debug_info(module.read_bytes())
    assert stripped is not None
    module.write_bytes(stripped)
    code = (
        f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import asyncio, uvloop; "
        "assert uvloop.__file__.startswith(sys.path[0]); "
        "print(uvloop.new_event_loop().run_until_complete(asyncio.sleep(0.01, 'ran')))"
    )
    result = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0 and result.stdout.strip() == "ran", result.stderr


def test_files_that_are_not_elf_are_left_alone() -> None:
    assert elf.without_debug_info(b"#!/bin/sh\n") is None
