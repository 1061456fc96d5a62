"""OCI container images of Python services, built by Bazel without Docker.

    load("//tools/oci:defs.bzl", "py_oci_image")

    # bazel build //event_service:image   bazel-bin/event_service/image.tar (+ image.digest, its ID)
    # bazel run //event_service:load      load it into Docker (else podman), print the tag
    py_oci_image(
        name = "image",
        binary = ":event_service",
        ports = [8082, 9092],
        health_port = 8082,
    )

An image has three layers, from least to most often changed:

1. the runtime, `//tools/oci:runtime` (`debian_rootfs`), shared by every image: Debian's
   python3.11 and the shared libraries it and the wheels need, unpacked from the pinned packages
   of debian_packages.lock (no shell, no dpkg, no apt), the non-root user the images run as, and
   a health probe;
2. the third-party packages: the binary's runfiles from external repositories, that is the
   locked wheels of @pypi that the binary depends on, and only those;
3. the service: the binary's runfiles from this workspace (our packages, the generated protos,
   data such as SQL migrations).

The runfiles keep their `bazel run` layout under /app (/app/<workspace>/<package>/...,
/app/pypi/site-packages/...) and PYTHONPATH lists the binary's import roots there, so the code
imports exactly as it does under Bazel. Every .py file gets a .pyc compiled by the image's own
interpreter, and shared objects of the wheels lose their debug information. Nothing in the
image points into Bazel's output base or at the build machine's Python.

`<name>.tar` is a docker-archive that `docker load` and `podman load` read (see image.py);
`<name>.digest` holds the image ID, identical for identical sources. The labels carry the
title, the source's version (`git describe`) and revision, and the commit time as the creation
time, read from Bazel's workspace status (workspace_status.sh, set in .bazelrc).
"""

load("@debian_packages//:status.bzl", "UNAVAILABLE")
load("//tools/pytest:defs.bzl", "py_pytest_test")

# When this machine's apt cannot provide the pinned Debian packages (another Debian release, or
# versions the archive has since replaced; see fetch_debs.py), images cannot be built here: the
# image targets and their tests are left out of `//...` (tagged manual), so that no test skips
# and is reported PASSED; run by name, a test skips saying why. Under `--config=ci` this never
# happens: the repository rule fails instead (debian.bzl), and every image is built and tested.
_SKIP_REASON_ENV = "OCI_IMAGES_UNAVAILABLE"

OciRuntimeInfo = provider(
    doc = "A runtime layer built by debian_rootfs, and what images built on it need to know.",
    fields = {
        "layer": "File: the layer tarball",
        "python": "string: the interpreter's path in the image",
        "user": "string: `uid:gid` of the user the images run as",
        "healthcheck": "string: the health probe script's path in the image",
    },
)

_APP_ROOT = "/app"
_HEALTHCHECK_PATH = "/usr/local/lib/ticketflow/healthcheck.py"

# Image names are ticketflow/<package>: spelled out, because ctx.workspace_name is the
# repository's runfiles name, "ticketflow" under WORKSPACE.bazel but "_main" under bzlmod.
_IMAGE_NAMESPACE = "ticketflow"

def _debian_rootfs_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".tar")
    args = ctx.actions.args()
    args.add("--out", out)
    args.add("--python", ctx.attr.python)
    args.add("--pycompile", ctx.file._pycompile)
    args.add("--user", ctx.attr.user)
    args.add("--uid", ctx.attr.uid)
    args.add_all(ctx.attr.exclude, before_each = "--exclude")
    args.add_all(ctx.attr.keep, before_each = "--keep")
    args.add_all(ctx.attr.compile, before_each = "--compile")
    args.add("--file", "{}={}".format(ctx.file.healthcheck.path, _HEALTHCHECK_PATH))
    args.add_all(ctx.files.debs)
    ctx.actions.run(
        executable = ctx.executable._rootfs,
        arguments = [args],
        inputs = ctx.files.debs + [ctx.file._pycompile, ctx.file.healthcheck],
        outputs = [out],
        mnemonic = "OciRuntimeLayer",
        progress_message = "Unpacking %d Debian packages into the runtime layer %s" % (len(ctx.files.debs), ctx.label),
    )
    return [
        DefaultInfo(files = depset([out])),
        OciRuntimeInfo(
            layer = out,
            python = ctx.attr.python,
            user = "{}:{}".format(ctx.attr.uid, ctx.attr.uid),
            healthcheck = _HEALTHCHECK_PATH,
        ),
    ]

debian_rootfs = rule(
    implementation = _debian_rootfs_impl,
    doc = "The runtime layer of the images: Debian packages unpacked, plus user, CA bundle and .pyc files (rootfs.py).",
    attrs = {
        "debs": attr.label_list(allow_files = [".deb"], mandatory = True, doc = "The .deb files, unpacked in this order."),
        "python": attr.string(mandatory = True, doc = "The interpreter's path in the image."),
        "user": attr.string(default = "ticketflow", doc = "Name of the non-root user the images run as."),
        "uid": attr.int(default = 65532, doc = "Its user and group id."),
        "exclude": attr.string_list(doc = "Globs of image paths (and everything under them) to leave out."),
        "keep": attr.string_list(doc = "Globs of image paths to keep even when an exclude matches."),
        "compile": attr.string_list(doc = "Image directories whose .py files get .pyc files."),
        "healthcheck": attr.label(mandatory = True, allow_single_file = [".py"], doc = "The health probe script."),
        "_rootfs": attr.label(default = "//tools/oci:rootfs", executable = True, cfg = "exec"),
        "_pycompile": attr.label(default = "//tools/oci:pycompile.py", allow_single_file = True),
    },
)

def _third_party_runfile(file):
    if file.short_path.startswith("../"):
        return file.short_path + "\t" + file.path
    return None

def _own_runfile(file):
    if file.short_path.startswith("../"):
        return None
    return file.short_path + "\t" + file.path

def _runfiles_layer(ctx, runtime, runfiles, map_each, suffix, what):
    out = ctx.actions.declare_file("{}_{}.tar".format(ctx.label.name, suffix))
    manifest = ctx.actions.args()
    manifest.set_param_file_format("multiline")
    manifest.use_param_file("--manifest=%s", use_always = True)
    manifest.add_all(runfiles, map_each = map_each)
    args = ctx.actions.args()
    args.add("--out", out)
    args.add("--prefix", _APP_ROOT)
    args.add("--workspace", ctx.workspace_name)
    args.add("--runtime", runtime.layer)
    args.add("--python", runtime.python)
    args.add("--pycompile", ctx.file._pycompile)
    args.add("--skip", ctx.executable.binary.short_path)
    ctx.actions.run(
        executable = ctx.executable._layer,
        arguments = [args, manifest],
        inputs = depset([runtime.layer, ctx.file._pycompile], transitive = [runfiles]),
        outputs = [out],
        mnemonic = "OciLayer",
        progress_message = "Building the {} layer of {}".format(what, ctx.label),
    )
    return out

def _python_path(ctx):
    roots = [ctx.workspace_name] + ctx.attr.binary[PyInfo].imports.to_list()
    return ":".join(["{}/{}".format(_APP_ROOT, root) for root in roots])

def _py_oci_image_impl(ctx):
    runtime = ctx.attr.runtime[OciRuntimeInfo]
    runfiles = ctx.attr.binary[DefaultInfo].default_runfiles.files
    layers = [
        runtime.layer,
        _runfiles_layer(ctx, runtime, runfiles, _third_party_runfile, "third_party", "third-party"),
        _runfiles_layer(ctx, runtime, runfiles, _own_runfile, "app", "application"),
    ]
    package = ctx.label.package.split("/")[-1]
    spec = {
        "title": ctx.attr.title or package,
        "tag": ctx.attr.tag or "{}/{}:latest".format(_IMAGE_NAMESPACE, package),
        "user": runtime.user,
        "entrypoint": [runtime.python, "-m", ctx.attr.main_module or package.replace("/", ".")],
        "env": dict(
            {
                "LANG": "C.UTF-8",
                "PATH": "/usr/local/bin:/usr/bin:/bin",
                "PYTHONPATH": _python_path(ctx),
                # The code is read-only and compiled already; log lines go out at once.
                "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONUNBUFFERED": "1",
            },
            **ctx.attr.env
        ),
        "workdir": "{}/{}".format(_APP_ROOT, ctx.workspace_name),
        "ports": ["{}/tcp".format(port) for port in ctx.attr.ports],
        "labels": ctx.attr.labels,
        "layer_comments": [
            "runtime: {} ({})".format(ctx.attr.runtime.label, runtime.python),
            "third-party packages of {}".format(ctx.attr.binary.label),
            "{} and its own files".format(ctx.attr.binary.label),
        ],
    }
    if ctx.attr.health_port:
        spec["healthcheck"] = {
            "command": [
                runtime.python,
                runtime.healthcheck,
                "--path",
                ctx.attr.health_path,
                "--port",
                str(ctx.attr.health_port),
                "--port-env",
                ctx.attr.health_port_env,
            ],
            "interval_seconds": 10,
            "timeout_seconds": 5,
            "start_period_seconds": 30,
            "retries": 3,
        }
    spec_file = ctx.actions.declare_file(ctx.label.name + ".spec.json")
    ctx.actions.write(spec_file, json.encode(spec))

    args = ctx.actions.args()
    args.add("--spec", spec_file)
    args.add("--stamp", ctx.info_file)
    args.add_all(layers, before_each = "--layer")
    args.add("--out", ctx.outputs.archive)
    args.add("--digest", ctx.outputs.digest)
    ctx.actions.run(
        executable = ctx.executable._image,
        arguments = [args],
        inputs = layers + [spec_file, ctx.info_file],
        outputs = [ctx.outputs.archive, ctx.outputs.digest],
        mnemonic = "OciImage",
        progress_message = "Assembling the image %s" % ctx.label,
    )
    return [
        DefaultInfo(files = depset([ctx.outputs.archive, ctx.outputs.digest])),
        OutputGroupInfo(layers = depset(layers)),
    ]

_py_oci_image = rule(
    implementation = _py_oci_image_impl,
    attrs = {
        "binary": attr.label(mandatory = True, executable = True, cfg = "target", providers = [PyInfo]),
        "runtime": attr.label(default = "//tools/oci:runtime", providers = [OciRuntimeInfo]),
        "main_module": attr.string(),
        "title": attr.string(),
        "tag": attr.string(),
        "ports": attr.int_list(),
        "env": attr.string_dict(),
        "labels": attr.string_dict(),
        "health_path": attr.string(default = "/healthz"),
        "health_port": attr.int(),
        "health_port_env": attr.string(default = "HTTP_PORT"),
        "_layer": attr.label(default = "//tools/oci:layer", executable = True, cfg = "exec"),
        "_image": attr.label(default = "//tools/oci:image", executable = True, cfg = "exec"),
        "_pycompile": attr.label(default = "//tools/oci:pycompile.py", allow_single_file = True),
    },
    outputs = {
        "archive": "%{name}.tar",
        "digest": "%{name}.digest",
    },
)

def py_oci_image(
        name,
        binary,
        ports = [],
        health_port = None,
        health_path = "/healthz",
        main_module = None,
        env = {},
        labels = {},
        tag = None,
        load_name = "load",
        **kwargs):
    """An OCI image running a py_binary, and a target that loads it into Docker or podman.

    Makes `<name>` (the archive `<name>.tar` and its image ID `<name>.digest`); `<name>_test`,
    which checks what is in the image without running it (image_contents_test.py: non-root
    user, libraries, no paths of the build machine, .pyc files, labels); and, unless
    `load_name` is None, the runnable `<load_name>`: `bazel run //pkg:load` loads the archive
    into Docker when a Docker engine answers, else into podman, and prints the tag.

    Args:
      name: target name; by convention `image`.
      binary: the py_binary the image runs.
      ports: TCP ports the service listens on (EXPOSE).
      health_port: HTTP port of the health check (overridden at run time by $HTTP_PORT, as the
        services do); no health check when None.
      health_path: path the health check GETs, expecting 200.
      main_module: module run with `python -m`; by default the package's name, which runs its
        `__main__.py` (the binary's main).
      env: extra environment variables of the image.
      labels: extra OCI labels (title, version, revision and created are always set).
      tag: `repository:tag` given to the loaded image; default `ticketflow/<package>:latest`.
      load_name: name of the load target, or None for none.
      **kwargs: visibility, tags, testonly.
    """
    if UNAVAILABLE:
        kwargs["tags"] = kwargs.get("tags", []) + ["manual"]
    _py_oci_image(
        name = name,
        binary = binary,
        ports = ports,
        health_port = health_port or 0,
        health_path = health_path,
        main_module = main_module or "",
        env = env,
        labels = labels,
        tag = tag or "",
        **kwargs
    )
    py_pytest_test(
        name = name + "_test",
        size = "small",
        srcs = ["//tools/oci:image_contents_test.py"],
        deps = [
            "//tools/oci:archive",
            "//tools/supervisor",
        ],
        **dict(kwargs, **image_archives({"OCI_IMAGE_ARCHIVE": ":%s.tar" % name}))
    )
    if load_name:
        native.py_binary(
            name = load_name,
            srcs = ["//tools/oci:load.py"],
            main = "//tools/oci:load.py",
            args = ["--archive", "$(rootpath :%s.tar)" % name],
            data = [":%s.tar" % name],
            python_version = "PY3",
            srcs_version = "PY3",
            **kwargs
        )


def py_image_test(name, images, data = [], env = {}, **kwargs):
    """A py_pytest_test of image archives; left out of `//...` where no image can be built.

    There it is tagged manual, and run by name it skips, saying why (see image_archives).

    Args:
      name: target name.
      images: {environment variable: image archive label, e.g. "//event_service:image.tar"};
        the test finds each archive at the runfiles path in its variable.
      data: further runtime files.
      env: further environment variables.
      **kwargs: passed to py_pytest_test.
    """
    archives = image_archives(images)
    if UNAVAILABLE:
        kwargs["tags"] = kwargs.get("tags", []) + ["manual"]
    py_pytest_test(
        name = name,
        data = data + archives["data"],
        env = dict(env, **archives["env"]),
        **kwargs
    )


def image_archives(archives):
    """The `data` and `env` of a test that reads image archives, or that skips without them.

    Args:
      archives: {environment variable: image archive label}; the test finds each archive at
        the runfiles path in its variable.

    Returns:
      A dict with `data` and `env` for the test rule. Where the images cannot be built here,
      `data` is empty and `env` holds OCI_IMAGES_UNAVAILABLE, the reason the test must skip.
    """
    if UNAVAILABLE:
        return {"data": [], "env": {_SKIP_REASON_ENV: UNAVAILABLE}}
    return {
        "data": archives.values(),
        "env": {variable: "$(rootpath %s)" % label for variable, label in archives.items()},
    }
