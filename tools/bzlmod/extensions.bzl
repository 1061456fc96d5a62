"""The bzlmod entry point to TicketFlow's repository rules (Bazel 7+, `MODULE.bazel`).

    deps = use_extension("//tools/bzlmod:extensions.bzl", "deps")
    deps.python_interpreter(name = "python_interpreter", path = "/usr/bin/python3")
    deps.pypi(name = "pypi", lock = "//:requirements.lock", ...)
    deps.debian_packages(name = "debian_packages", lock = "//tools/oci:debian_packages.lock", ...)
    use_repo(deps, "debian_packages", "pypi", "python_interpreter")

`WORKSPACE.bazel` (Bazel 4.2.3) calls the same repository rules directly. Here each tag class
is one of those rules: it takes the rule's own public attributes (the `*_ATTRS` dict its file
exports) plus `name`, and every tag becomes one call of the rule with exactly those values. No
repository logic lives in this file, so both entry points build the same repositories.

To add a repository rule: export its public attributes next to it, load both here and add one
entry to `_RULES`; then add the tag and its `use_repo` name to `MODULE.bazel`.
"""

load("//tools/oci:debian.bzl", "DEBIAN_PACKAGES_ATTRS", "debian_packages")
load("//tools/pypi:repository.bzl", "PYPI_REPOSITORY_ATTRS", "pypi_repository")
load("//tools/python:interpreter.bzl", "PYTHON_INTERPRETER_ATTRS", "python_interpreter")

# tag class name -> the repository rule it calls and that rule's public attributes.
_RULES = {
    "debian_packages": struct(rule = debian_packages, attrs = DEBIAN_PACKAGES_ATTRS),
    "pypi": struct(rule = pypi_repository, attrs = PYPI_REPOSITORY_ATTRS),
    "python_interpreter": struct(rule = python_interpreter, attrs = PYTHON_INTERPRETER_ATTRS),
}

_NAME = {"name": attr.string(mandatory = True, doc = "Name of the repository, as `use_repo` names it.")}

def _deps_impl(mctx):
    for module in mctx.modules:
        for tag_name, entry in _RULES.items():
            for tag in getattr(module.tags, tag_name):
                entry.rule(
                    name = tag.name,
                    **{attr_name: getattr(tag, attr_name) for attr_name in entry.attrs}
                )

deps = module_extension(
    implementation = _deps_impl,
    doc = "TicketFlow's external repositories, made by the same rules WORKSPACE.bazel calls.",
    tag_classes = {
        tag_name: tag_class(
            attrs = dict(_NAME, **entry.attrs),
            doc = "One repository made by the `{}` entry of _RULES, with that rule's attributes.".format(tag_name),
        )
        for tag_name, entry in _RULES.items()
    },
)
