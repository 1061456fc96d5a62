"""Protocol Buffers for TicketFlow: proto sources and their generated Python and gRPC code.

    load("//tools/proto:defs.bzl", "proto_library", "py_grpc_library", "py_proto_library")

    proto_library(name = "event_proto", srcs = ["event_service.proto"])
    py_proto_library(name = "event_py_pb2", proto = ":event_proto")        # *_pb2.py + .pyi
    py_grpc_library(name = "event_py_pb2_grpc", proto = ":event_proto",   # *_pb2_grpc.py + .pyi
                    deps = [":event_py_pb2"])

`proto_library` here is ours, not Bazel's native rule (which would need protoc built from the
protobuf C++ sources): it only collects `.proto` files and their import root. Code is
generated at build time by `//tools/proto:protoc`, the protoc and gRPC plugin bundled in the
locked grpcio-tools wheel; nothing generated is committed. Imports are relative to the
import root, so `proto/ticketflow/event/v1/event_service.proto` is imported in Python as
`from ticketflow.event.v1 import event_service_pb2`.

Every generated module gets a typed stub (.pyi) beside it, which `mypy --strict`
(//tools/lint:mypy_test) checks along with the code that uses it. The stubs are mypy-protobuf's
(protoc-gen-mypy, protoc-gen-mypy_grpc), not protoc's own `--pyi_out`: protoc has no stubs for
the gRPC modules at all, and one generator for both keeps them consistent; its message stubs are
also stricter (enums as distinct int types, field names as literals in HasField/ClearField/
WhichOneof, so a misspelt field is a type error) and are what types-protobuf's own stubs are
generated with. The gRPC stubs are `only_async`: TicketFlow uses grpc.aio alone, and with sync
and async types mixed every awaited call would need a cast.
"""

ProtoSourcesInfo = provider(
    doc = "The .proto files of a proto_library and where their import paths start.",
    fields = {
        "direct_sources": "list of File: this target's .proto files",
        "transitive_sources": "depset of File: these and every dependency's .proto files",
        "import_roots": "depset of string: directories (execroot-relative) to pass as protoc -I",
        "python_import_root": "string: the import root as a runfiles path, for PyInfo.imports",
    },
)

def _import_root_of(ctx):
    root = ctx.attr.import_root.strip("/")
    if not ctx.label.package.startswith(root):
        fail("{}: package must be under the import root '{}'".format(ctx.label, root))
    return root

def _proto_library_impl(ctx):
    root = _import_root_of(ctx)
    for src in ctx.files.srcs:
        if src.dirname != ctx.label.package and not src.dirname.endswith("/" + ctx.label.package):
            fail("{}: {} must be in the package's own directory".format(ctx.label, src.short_path))
    return [
        DefaultInfo(files = depset(ctx.files.srcs)),
        ProtoSourcesInfo(
            direct_sources = ctx.files.srcs,
            transitive_sources = depset(
                ctx.files.srcs,
                transitive = [dep[ProtoSourcesInfo].transitive_sources for dep in ctx.attr.deps],
            ),
            import_roots = depset(
                [root],
                transitive = [dep[ProtoSourcesInfo].import_roots for dep in ctx.attr.deps],
            ),
            python_import_root = ctx.workspace_name + "/" + root,
        ),
    ]

proto_library = rule(
    implementation = _proto_library_impl,
    doc = "A set of .proto files in one package, and the proto_library targets they import.",
    attrs = {
        "srcs": attr.label_list(allow_files = [".proto"], doc = "The package's .proto files."),
        "deps": attr.label_list(providers = [ProtoSourcesInfo], doc = "proto_library targets imported."),
        "import_root": attr.string(
            default = "proto",
            doc = "Workspace directory that proto import paths (and Python packages) are relative to.",
        ),
    },
)

def _generated_name(src, suffix):
    return src.basename[:-len(".proto")] + suffix

def _py_compile_impl(ctx, suffixes, protoc_flags):
    info = ctx.attr.proto[ProtoSourcesInfo]
    outputs = []
    for src in info.direct_sources:
        for suffix in suffixes:
            outputs.append(ctx.actions.declare_file(_generated_name(src, suffix)))

    # protoc writes <out>/<import path>; the outputs above sit at <bin>/<package>/, so <out> is
    # the bin directory's copy of the import root.
    out_dir = ctx.bin_dir.path + "/" + info.python_import_root.split("/", 1)[1]
    args = ctx.actions.args()
    args.add_all(info.import_roots, format_each = "-I%s")
    for flag in protoc_flags:
        args.add(flag.format(out = out_dir))
    args.add_all(info.direct_sources)
    ctx.actions.run(
        executable = ctx.executable._protoc,
        arguments = [args],
        inputs = info.transitive_sources,
        outputs = outputs,
        mnemonic = "ProtocPython",
        progress_message = "Generating Python code for %s" % ctx.label,
    )

    py_outputs = [f for f in outputs if f.extension == "py"]
    deps = ctx.attr.deps + ctx.attr._runtime_deps
    runfiles = ctx.runfiles(files = outputs)
    for dep in deps:
        runfiles = runfiles.merge(dep[DefaultInfo].default_runfiles)
    return [
        DefaultInfo(files = depset(outputs), runfiles = runfiles),
        PyInfo(
            transitive_sources = depset(py_outputs, transitive = [d[PyInfo].transitive_sources for d in deps]),
            imports = depset([info.python_import_root], transitive = [d[PyInfo].imports for d in deps]),
        ),
    ]

def _py_proto_library_impl(ctx):
    return _py_compile_impl(ctx, ["_pb2.py", "_pb2.pyi"], ["--python_out={out}", "--mypy_out=quiet:{out}"])

def _py_grpc_library_impl(ctx):
    return _py_compile_impl(
        ctx,
        ["_pb2_grpc.py", "_pb2_grpc.pyi"],
        ["--grpc_python_out={out}", "--mypy_grpc_out=quiet,only_async,generate_concrete_servicer_stubs:{out}"],
    )

def _py_rule(implementation, doc, runtime_deps):
    return rule(
        implementation = implementation,
        doc = doc,
        attrs = {
            "proto": attr.label(mandatory = True, providers = [ProtoSourcesInfo]),
            "deps": attr.label_list(
                providers = [PyInfo],
                doc = "Python libraries the generated code imports (the _pb2 libraries of imported protos).",
            ),
            "_runtime_deps": attr.label_list(default = runtime_deps, providers = [PyInfo]),
            "_protoc": attr.label(
                default = "//tools/proto:protoc",
                executable = True,
                cfg = "exec",
            ),
        },
    )

py_proto_library = _py_rule(
    _py_proto_library_impl,
    "Generates <name>_pb2.py and its typed stub <name>_pb2.pyi for a proto_library's own files.",
    ["@pypi//protobuf"],
)

py_grpc_library = _py_rule(
    _py_grpc_library_impl,
    "Generates <name>_pb2_grpc.py (stubs and servicers) and its typed stub <name>_pb2_grpc.pyi " +
    "for a proto_library's own files; " +
    "put the matching py_proto_library in deps.",
    ["@pypi//grpcio"],
)
