"""The per-machine directory of dev credentials, and how files get into it safely.

`$TICKETFLOW_DEV_HOME`, else `$XDG_STATE_HOME/ticketflow-dev`, else
`~/.local/state/ticketflow-dev`. The directory is mode 0700 and private keys 0600. Creation
happens under an exclusive lock on `<home>/.lock`, so two processes starting at once make one
set of credentials, not two halves; every file is written to a temporary name and renamed into
place, so a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

PRIVATE = 0o600
PUBLIC = 0o644


def dev_home(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    if explicit := environ.get("TICKETFLOW_DEV_HOME"):
        return Path(explicit)
    state = environ.get("XDG_STATE_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".local" / "state")
    return Path(state) / "ticketflow-dev"


@contextlib.contextmanager
def locked(home: Path) -> Iterator[Path]:
    """Creates `home` (0700) if needed and holds its lock while the block runs."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    if home.stat().st_mode & 0o077:
        home.chmod(0o700)
    fd = os.open(home / ".lock", os.O_RDWR | os.O_CREAT, PRIVATE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield home
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Writes `data` to `path` through a temporary file in the same directory and a rename."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_private_key(path: Path, key: ec.EllipticCurvePrivateKey) -> bytes:
    """Writes `key` as unencrypted PKCS#8 PEM, mode 0600; returns the PEM."""
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    write_atomic(path, pem, PRIVATE)
    return pem
