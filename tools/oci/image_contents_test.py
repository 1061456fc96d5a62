"""What is in an image archive made by py_oci_image, checked without running it.

py_oci_image adds one such test per image (`<name>_test`, for example
//event_service:image_test), naming the archive in $OCI_IMAGE_ARCHIVE (a runfiles path).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tools.oci.archive import ImageArchive
from tools.supervisor.runfiles import runfile

PYC_HASH_BASED_UNCHECKED = 0b01  # PEP 552 flags: hash-based, source not checked


@pytest.fixture(scope="module")
def image() -> Iterator[ImageArchive]:
    if reason := os.environ.get("OCI_IMAGES_UNAVAILABLE"):
        pytest.skip(f"no image to check: {reason}")
    with ImageArchive(Path(runfile(os.environ["OCI_IMAGE_ARCHIVE"]))) as archive:
        yield archive


def _config(image: ImageArchive) -> dict[str, Any]:
    config: dict[str, Any] = image.config["config"]
    return config


def _python_version(image: ImageArchive) -> str:
    """ "3.11" for an entrypoint /usr/bin/python3.11."""
    return str(_config(image)["Entrypoint"][0]).rsplit("/python", 1)[1]


def _python_path(image: ImageArchive) -> list[str]:
    env = dict(item.split("=", 1) for item in _config(image)["Env"])
    return str(env["PYTHONPATH"]).split(":")


def test_it_runs_as_a_non_root_user_of_its_own_passwd(image: ImageArchive) -> None:
    uid, _, gid = str(_config(image)["User"]).partition(":")
    assert uid != "0" and gid != "0"
    passwd = image.read("etc/passwd").decode().splitlines()
    assert any(line.split(":")[2:4] == [uid, gid] for line in passwd), passwd


def test_the_entrypoint_is_the_images_own_python(image: ImageArchive) -> None:
    entrypoint = _config(image)["Entrypoint"]
    python = image.resolve(entrypoint[0])
    assert python is not None and image.read(python).startswith(b"\x7fELF"), entrypoint


def test_layers_go_from_runtime_to_third_party_to_the_service(image: ImageArchive) -> None:
    assert image.layer_count == 3
    by_layer: dict[int, set[str]] = {0: set(), 1: set(), 2: set()}
    for path, found in image.files.items():
        if found.member.isfile():
            by_layer[found.layer].add(path)
    workspace_root = _python_path(image)[0].strip("/")
    assert f"usr/bin/python{_python_version(image)}" in by_layer[0]
    assert by_layer[1] and not any(p.startswith(workspace_root + "/") for p in by_layer[1])
    assert by_layer[2] and all(p.startswith(workspace_root + "/") for p in by_layer[2])


def test_every_shared_object_finds_its_libraries_in_the_image(image: ImageArchive) -> None:
    assert image.missing_libraries() == []


def test_nothing_names_bazels_output_base_or_the_build_machines_python(image: ImageArchive) -> None:
    # The test's own runfiles are under the output base: .../<user root>/<hash>/execroot/<workspace>/...
    runfiles = os.path.realpath(os.environ["TEST_SRCDIR"])
    output_base = runfiles.split("/execroot/")[0].split("/sandbox/")[0]
    # pip compiles the wheels' .pyc files in a temporary directory of its own, /tmp/pip-target-*.
    needles = [output_base.encode(), os.path.dirname(output_base).encode(), b"/execroot/", b"/pip-target-"]
    for needle in needles:
        assert needle not in image.config_bytes
        assert image.files_containing(needle) == [], needle


def test_every_python_file_has_a_pyc_that_never_checks_its_source(image: ImageArchive) -> None:
    version = _python_version(image)
    roots = [p.strip("/") + "/" for p in _python_path(image)] + [f"usr/lib/python{version}/"]
    sources = [
        p for p, f in image.files.items() if f.member.isfile() and p.endswith(".py") and p.startswith(tuple(roots))
    ]
    assert len(sources) > 500
    missing = []
    for source in sources:
        directory, _, name = source.rpartition("/")
        pyc = f"{directory}/__pycache__/{name[:-3]}.cpython-{version.replace('.', '')}.pyc"
        if pyc not in image.files:
            missing.append(source)
        elif source.endswith("/__init__.py") and source.startswith(roots[0]):
            (flags,) = struct.unpack_from("<I", image.read(pyc), 4)
            assert flags == PYC_HASH_BASED_UNCHECKED, pyc
    assert missing == []


def test_labels_ports_and_health_check_are_set(image: ImageArchive) -> None:
    config = _config(image)
    labels = config["Labels"]
    for key in ("title", "version", "revision", "created"):
        assert labels[f"org.opencontainers.image.{key}"], key
    assert labels["org.opencontainers.image.created"] == image.config["created"]
    assert config["ExposedPorts"]
    test = config["Healthcheck"]["Test"]
    assert test[0] == "CMD" and image.resolve(test[1]) and image.resolve(test[2]), test
