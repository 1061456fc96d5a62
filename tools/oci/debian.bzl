"""`debian_packages`: the pinned Debian packages of the container images, as a Bazel repository.

    load("//tools/oci:debian.bzl", "debian_packages")

    debian_packages(
        name = "debian_packages",
        lock = "//tools/oci:debian_packages.lock",
        interpreter_path = "@python_interpreter//:interpreter_path.txt",
    )

The repository rule reads the lock (package, version, architecture, sha256 per line; written by
`bazel run //tools/oci:debian_packages.update`), runs `apt-get download NAME=VERSION` for every
line, refuses any file whose sha256 differs from the lock, and exposes the .deb files as
`@debian_packages//:debs`. `//tools/oci:runtime` unpacks them into the images' runtime layer.

Where apt cannot provide them, the repository says why (`UNAVAILABLE` in its status.bzl) and the
images are left out of the build; but when the repository environment sets
TICKETFLOW_REQUIRE_ALL_TESTS (`--config=ci` in .bazelrc: `--repo_env`), that is an error.

apt-get downloads through the machine's apt sources, so its package lists must exist
(`apt-get update`; `./tools/bazel` runs it when it installs packages), and the pinned versions
must still be in the archive: when a security update replaces one, regenerate the lock.
Editing the lock re-runs the rule.
"""

load("//tools/python:interpreter.bzl", "INTERPRETER_PATH_ATTR")

_REQUIRE_ENV = "TICKETFLOW_REQUIRE_ALL_TESTS"

def _debian_packages_impl(rctx):
    python = rctx.read(rctx.attr.interpreter_path).strip()
    rctx.report_progress("apt-get download: the packages of {}".format(rctx.attr.lock))
    require = rctx.os.environ.get(_REQUIRE_ENV, "") not in ("", "0")
    result = rctx.execute(
        [
            python,
            "-I",
            rctx.path(rctx.attr._fetcher),
            "--lock",
            rctx.path(rctx.attr.lock),
            "--out",
            rctx.path("."),
        ] + (["--require"] if require else []),
        timeout = rctx.attr.timeout,
        quiet = True,
    )
    if result.return_code != 0:
        fail("@{}: fetching the Debian packages of {} failed:\n{}{}".format(
            rctx.name,
            rctx.attr.lock,
            result.stdout,
            result.stderr,
        ))
    rctx.file("WORKSPACE", "workspace(name = \"{}\")\n".format(rctx.name))

# The attributes a caller sets, shared with the `debian_packages` tag of the bzlmod extension in
# //tools/bzlmod:extensions.bzl, so that both entry points take the same arguments.
DEBIAN_PACKAGES_ATTRS = {
    "lock": attr.label(mandatory = True, allow_single_file = True, doc = "The package lock file."),
    "interpreter_path": INTERPRETER_PATH_ATTR,
    "timeout": attr.int(default = 600, doc = "Seconds apt-get may take to download everything."),
}

debian_packages = repository_rule(
    implementation = _debian_packages_impl,
    environ = [_REQUIRE_ENV],
    doc = "Downloads the .deb files of a Debian package lock, checks their sha256, exposes `:debs`.",
    attrs = dict(
        DEBIAN_PACKAGES_ATTRS,
        _fetcher = attr.label(default = Label("//tools/oci:fetch_debs.py")),
    ),
)
