"""protoc with the gRPC Python plugin, as bundled in the locked grpcio-tools wheel.

Used by the rules in defs.bzl as their code generator, so no protoc or gRPC plugin is ever
compiled from C++ sources. The well-known types (google/protobuf/*.proto) shipped with
grpcio-tools are always on the import path.
"""

from __future__ import annotations

import sys
from importlib import resources

from grpc_tools import protoc


def main(argv: list[str]) -> int:
    well_known = resources.files("grpc_tools") / "_proto"
    return int(protoc.main(["protoc", *argv, f"-I{well_known}"]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
