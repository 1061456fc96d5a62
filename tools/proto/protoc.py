"""protoc with the gRPC Python plugin and mypy-protobuf's stub plugins, from the locked wheels.

Used by the rules in defs.bzl as their code generator, so no protoc or plugin is ever compiled
from C++ sources. Two sets of shared protos are always on the import path: the well-known types
(google/protobuf/*.proto) shipped with grpcio-tools, and the Google API annotations
(google/api/annotations.proto, http.proto: the `google.api.http` REST mapping) shipped with
googleapis-common-protos, the same wheel whose `annotations_pb2` the generated code imports.
Besides protoc's own outputs (`--python_out`, `--grpc_python_out` from grpcio-tools), two
more are available:

    --mypy_out=DIR        *_pb2.pyi       typed stubs of the messages (mypy-protobuf's protoc-gen-mypy)
    --mypy_grpc_out=DIR   *_pb2_grpc.pyi  typed stubs of the stubs and servicers (protoc-gen-mypy_grpc)

protoc runs plugins as separate executables. The wheels' own `bin/protoc-gen-mypy` scripts name
the interpreter that installed them and find mypy_protobuf only on its default path, so each
run writes two small launchers of its own: this interpreter, this process's import path.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

# protoc plugin name -> the mypy_protobuf.main function that implements it.
_PLUGINS = {"mypy": "main", "mypy_grpc": "grpc"}


def write_plugin(directory: Path, name: str, function: str) -> Path:
    """An executable `protoc-gen-<name>` running mypy_protobuf.main.<function> with this import path."""
    launcher = directory / f"protoc-gen-{name}"
    launcher.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"sys.path[:0] = {[os.path.abspath(p) for p in sys.path if p]!r}\n"
        f"from mypy_protobuf.main import {function}\n"
        f"{function}()\n",
        encoding="utf-8",
    )
    launcher.chmod(0o755)
    return launcher


def _module_file(name: str) -> str:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise SystemExit(f"protoc: {name} is not installed (googleapis-common-protos)")
    return spec.origin


def main(argv: list[str]) -> int:
    well_known = resources.files("grpc_tools") / "_proto"
    # google/api/annotations.proto sits beside its _pb2 module: the import root is two levels up.
    google_api = Path(_module_file("google.api.annotations_pb2")).parent.parent.parent
    with tempfile.TemporaryDirectory(prefix="protoc-plugins-") as plugins:
        plugin_flags = [
            f"--plugin=protoc-gen-{name}={write_plugin(Path(plugins), name, function)}"
            for name, function in _PLUGINS.items()
        ]
        return int(protoc.main(["protoc", *plugin_flags, *argv, f"-I{well_known}", f"-I{google_api}"]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
