"""Builds the images' runtime layer from pinned Debian packages, without dpkg, apt or a shell.

    rootfs.py --out runtime.tar --python /usr/bin/python3.11 --pycompile pycompile.py \\
        [--exclude GLOB]... [--keep GLOB]... [--compile DIR]... [--file SRC=DEST]... \\
        --user NAME --uid UID  A.deb B.deb ...

Each .deb's data is unpacked (as `dpkg-deb -x` would; no maintainer script runs) in the order
given, leaving out paths matching an --exclude glob (or under such a path) unless they match a
--keep glob. Then the layer gets what those scripts or an installer would have made and an
image needs:

- /etc/passwd and /etc/group with root, nobody and the service user (--user, --uid), and the
  user's home directory;
- the CA bundle /etc/ssl/certs/ca-certificates.crt (what update-ca-certificates writes), and
  OpenSSL's default paths pointing at it;
- /var/lib/dpkg/status.d/<package>, each package's control file, from which image scanners
  learn the Debian packages and versions in the image;
- .pyc files for the .py files under each --compile directory, compiled by the image's own
  interpreter (see image_python.py), so that Python never compiles the standard library at
  start-up;
- extra files (--file SRC=DEST), such as the health probe.
"""

from __future__ import annotations

import argparse
import fnmatch
import io
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tools.oci.image_python import ImagePython
from tools.oci.tarball import Layer, image_path

_CA_BUNDLE = "etc/ssl/certs/ca-certificates.crt"


@dataclass(frozen=True)
class Deb:
    name: str
    control: str
    data: bytes  # the data.tar.* member, still compressed


def read_ar(data: bytes) -> dict[str, bytes]:
    """Members of a Unix `ar` archive (the container format of a .deb)."""
    if not data.startswith(b"!<arch>\n"):
        raise ValueError("not an ar archive")
    members: dict[str, bytes] = {}
    offset = 8
    while offset < len(data):
        header = data[offset : offset + 60]
        if len(header) < 60 or header[58:60] != b"`\n":
            raise ValueError(f"corrupt ar member header at byte {offset}")
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        members[name] = data[offset + 60 : offset + 60 + size]
        offset += 60 + size + (size % 2)
    return members


def read_deb(path: Path) -> Deb:
    members = read_ar(path.read_bytes())
    control_name = next((n for n in members if n.startswith("control.tar")), None)
    data_name = next((n for n in members if n.startswith("data.tar")), None)
    if control_name is None or data_name is None:
        raise ValueError(f"{path}: not a Debian package (members: {sorted(members)})")
    if data_name.endswith(".zst") or control_name.endswith(".zst"):
        raise ValueError(f"{path}: zstd-compressed packages are not supported (Python's tarfile cannot read them)")
    with tarfile.open(fileobj=io.BytesIO(members[control_name])) as tar:
        member = tar.extractfile("./control")
        assert member is not None
        control = member.read().decode()
    fields = dict(line.split(": ", 1) for line in control.splitlines() if ": " in line and not line.startswith(" "))
    return Deb(fields["Package"], control, members[data_name])


class PathFilter:
    def __init__(self, exclude: list[str], keep: list[str]) -> None:
        self.exclude = exclude
        self.keep = keep

    def wanted(self, path: str) -> bool:
        if any(fnmatch.fnmatchcase(path, pattern) for pattern in self.keep):
            return True
        candidates = [path] + [str(p) for p in PurePosixPath(path).parents if str(p) != "."]
        return not any(fnmatch.fnmatchcase(c, pattern) for c in candidates for pattern in self.exclude)


def unpack(deb: Deb, root: Path, paths: PathFilter) -> None:
    with tarfile.open(fileobj=io.BytesIO(deb.data)) as tar:
        for member in tar:
            if member.name in (".", "./"):
                continue
            name = image_path(member.name)
            if not paths.wanted(name):
                continue
            dest = root / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            if member.isdir():
                dest.mkdir(exist_ok=True)
                dest.chmod(member.mode & 0o7777)
            elif member.issym():
                if dest.is_symlink() or dest.exists():
                    dest.unlink()
                dest.symlink_to(member.linkname)
            elif member.isfile():
                source = tar.extractfile(member)
                assert source is not None
                if dest.is_symlink():
                    dest.unlink()
                with source, dest.open("wb") as f:
                    shutil.copyfileobj(source, f)
                dest.chmod(member.mode & 0o7777)
            else:
                raise ValueError(f"{deb.name}: {member.name}: only files, directories and symbolic links are supported")


def ca_bundle(root: Path) -> bytes:
    """The concatenated certificates of /usr/share/ca-certificates, as update-ca-certificates writes them."""
    certificates = sorted((root / "usr/share/ca-certificates").rglob("*.crt"))
    return b"".join(c.read_bytes().rstrip(b"\n") + b"\n" for c in certificates)


def accounts(user: str, uid: int) -> tuple[bytes, bytes]:
    passwd = (
        "root:x:0:0:root:/root:/usr/sbin/nologin\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        f"{user}:x:{uid}:{uid}:{user}:/home/{user}:/usr/sbin/nologin\n"
    )
    group = f"root:x:0:\nnogroup:x:65534:\n{user}:x:{uid}:\n"
    return passwd.encode(), group.encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("debs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--python", required=True, help="the interpreter's path in the image")
    parser.add_argument("--pycompile", type=Path, required=True)
    parser.add_argument("--exclude", action="append", default=[])
    parser.add_argument("--keep", action="append", default=[])
    parser.add_argument("--compile", action="append", default=[], help="image directory to byte-compile")
    parser.add_argument("--file", action="append", default=[], help="SRC=DEST: an extra file")
    parser.add_argument("--user", required=True)
    parser.add_argument("--uid", type=int, required=True)
    args = parser.parse_args()

    paths = PathFilter(args.exclude, args.keep)
    layer = Layer()
    with tempfile.TemporaryDirectory(prefix="rootfs-", dir=args.out.parent) as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        debs = [read_deb(path) for path in args.debs]
        for deb in debs:
            unpack(deb, root, paths)
        layer.add_tree(root)

        for deb in debs:
            layer.add_bytes(f"var/lib/dpkg/status.d/{deb.name}", deb.control.encode())
        passwd, group = accounts(args.user, args.uid)
        layer.add_bytes("etc/passwd", passwd)
        layer.add_bytes("etc/group", group)
        layer.add_dir(f"home/{args.user}", 0o700, args.uid, args.uid)
        if (root / "usr/share/ca-certificates").is_dir():
            layer.add_bytes(_CA_BUNDLE, ca_bundle(root))
            layer.add_symlink("usr/lib/ssl/cert.pem", "/" + _CA_BUNDLE)
            layer.add_symlink("usr/lib/ssl/certs", "/etc/ssl/certs")
        for spec in args.file:
            source, _, dest = spec.partition("=")
            layer.add_file(dest, Path(source), 0o644)

        sources = [
            (path, "/" + path.relative_to(root).as_posix())
            for directory in args.compile
            for path in sorted((root / image_path(directory)).rglob("*.py"))
        ]
        pyc_dir = Path(tmp) / "pyc"
        for pyc in ImagePython(root, args.python).compile(args.pycompile, sources, pyc_dir):
            layer.add_file(pyc, pyc_dir / pyc.lstrip("/"), 0o644)
        layer.write(args.out)


if __name__ == "__main__":
    main()
