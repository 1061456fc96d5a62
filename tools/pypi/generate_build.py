"""Writes the BUILD files of the `@pypi` repository from an installed site-packages directory.

Run by `//tools/pypi:repository.bzl` with the project's interpreter, after pip has installed
every locked wheel into `site-packages/`. For each distribution it writes one `py_library` in
the repository's root package (its own files only, taken from the wheel's RECORD) and a package
`<name>/` holding an alias, so that the distribution is the label `@pypi//<name>`. Each
library depends on the libraries of the distribution's own requirements (`Requires-Dist`),
evaluated for this interpreter and for the extras the lock asks for.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from dataclasses import dataclass, field
from email.parser import HeaderParser
from pathlib import Path

# Characters Bazel accepts in a label's target name; files with others (setuptools ships
# templates with spaces in their names) are left out and listed in a comment.
_LABEL_SAFE = re.compile(r"^[A-Za-z0-9_./+\-=,@~]+$")
_LOCK_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[([^\]]*)\])?==")


def normalize(name: str) -> str:
    """PEP 503 name: lower case, runs of '-', '_' and '.' as one '-'."""
    return re.sub(r"[-_.]+", "-", name).lower()


def label_name(name: str) -> str:
    return normalize(name).replace("-", "_")


@dataclass
class Distribution:
    name: str
    requires: list[str]
    py_files: list[str] = field(default_factory=list)
    data_files: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    deps: set[str] = field(default_factory=set)


def _is_elf(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == b"\x7fELF"


def read_distributions(site: Path) -> dict[str, Distribution]:
    dists: dict[str, Distribution] = {}
    for info in sorted(site.glob("*.dist-info")):
        meta = HeaderParser().parsestr((info / "METADATA").read_text(encoding="utf-8"))
        dist = Distribution(name=normalize(meta["Name"]), requires=meta.get_all("Requires-Dist") or [])
        with (info / "RECORD").open(newline="", encoding="utf-8") as record:
            for row in csv.reader(record):
                path = row[0]
                # Scripts land in bin/ (RECORD says ../../bin/: pip installs to a temporary
                # prefix, then moves). Console scripts are not importable code and name the
                # build machine's Python; compiled programs a wheel ships (ruff's `ruff`) are
                # kept, since its Python package only finds and runs them.
                if path.startswith("../../bin/"):
                    path = path.removeprefix("../../")
                    if not (site / path).is_file() or not _is_elf(site / path):
                        continue
                if path.startswith(("..", "/")) or not (site / path).is_file():
                    continue
                if not _LABEL_SAFE.match(path):
                    dist.skipped.append(path)
                elif path.endswith(".py"):
                    dist.py_files.append(f"{site.name}/{path}")
                else:
                    dist.data_files.append(f"{site.name}/{path}")
        dists[dist.name] = dist
    return dists


def read_lock_extras(lock: Path) -> dict[str, set[str]]:
    extras: dict[str, set[str]] = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        match = _LOCK_LINE.match(line)
        if match and match.group(2):
            extras.setdefault(normalize(match.group(1)), set()).update(e.strip() for e in match.group(2).split(","))
    return extras


def resolve_deps(dists: dict[str, Distribution], extras: dict[str, set[str]]) -> None:
    """Fills each distribution's deps, iterating until extras asked for by others are included."""
    # Imported here: `packaging` is one of the wheels just installed (main() puts it on sys.path).
    from packaging.requirements import Requirement  # noqa: PLC0415

    changed = True
    while changed:
        changed = False
        for dist in dists.values():
            wanted_extras = extras.get(dist.name, set())
            for spec in dist.requires:
                req = Requirement(spec)
                envs = [{"extra": ""}] + [{"extra": e} for e in sorted(wanted_extras)]
                if req.marker is not None and not any(req.marker.evaluate(env) for env in envs):
                    continue
                dep = normalize(req.name)
                if dep not in dists:
                    sys.exit(
                        f"@pypi: {dist.name} requires {dep}, which is not in the lock. "
                        "Regenerate it: bazel run //:requirements.update"
                    )
                if dep not in dist.deps:
                    dist.deps.add(dep)
                    changed = True
                new_extras = set(req.extras) - extras.get(dep, set())
                if new_extras:
                    extras.setdefault(dep, set()).update(new_extras)
                    changed = True


def check_acyclic(dists: dict[str, Distribution]) -> None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = [*path[path.index(name) :], name]
            sys.exit("@pypi: dependency cycle " + " -> ".join(cycle) + "; Bazel cannot express it")
        state[name] = 1
        for dep in sorted(dists[name].deps):
            visit(dep, [*path, name])
        state[name] = 2

    for name in sorted(dists):
        visit(name, [])


def _string_list(items: list[str], indent: str = "        ") -> str:
    if not items:
        return "[]"
    return "[\n" + "".join(f'{indent}"{item}",\n' for item in sorted(items)) + "    ]"


def write_build_files(out: Path, dists: dict[str, Distribution], header: str) -> None:
    parts = [
        header,
        "# One py_library per locked distribution; use them as @pypi//<name>.\n",
        'package(default_visibility = ["//:__subpackages__"])\n',
    ]
    for name in sorted(dists):
        dist = dists[name]
        skipped = "".join(f"# left out (not a valid label): {p}\n" for p in sorted(dist.skipped))
        deps = [f"//:{label_name(d)}_pkg" for d in dist.deps]
        parts.append(
            f"\n{skipped}py_library(\n"
            f'    name = "{label_name(name)}_pkg",\n'
            f"    srcs = {_string_list(dist.py_files)},\n"
            f"    data = {_string_list(dist.data_files)},\n"
            f"    deps = {_string_list(deps)},\n"
            '    imports = ["site-packages"],\n'
            ")\n"
        )
    (out / "BUILD.bazel").write_text("".join(parts), encoding="utf-8")
    for name in dists:
        package = out / label_name(name)
        package.mkdir(exist_ok=True)
        (package / "BUILD.bazel").write_text(
            f"{header}"
            f'alias(\n    name = "{label_name(name)}",\n'
            f'    actual = "//:{label_name(name)}_pkg",\n'
            '    visibility = ["//visibility:public"],\n)\n',
            encoding="utf-8",
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repo", type=Path, required=True, help="root of the @pypi repository")
    parser.add_argument("--lock", type=Path, required=True)
    parser.add_argument("--header", default="")
    args = parser.parse_args()

    site = args.repo / "site-packages"
    # `packaging` is itself a locked distribution; use the copy just installed.
    sys.path.insert(0, str(site))
    dists = read_distributions(site)
    resolve_deps(dists, read_lock_extras(args.lock))
    check_acyclic(dists)
    write_build_files(args.repo, dists, args.header)


if __name__ == "__main__":
    main()
