"""A throw-away PostgreSQL server: `initdb` into a temporary directory, run it, remove it.

    with EmbeddedPostgres(settings=DURABLE) as pg:
        pg.create_database("test_db_1")
        pg.dsn("test_db_1")      # host=127.0.0.1 port=<free port> user=postgres dbname=test_db_1

Used by the tests (tools/testing/postgres.py), the dev stack (//:ticketflow) and the benchmark.
It handles two facts of the machines TicketFlow is built on (see README.md):

- PostgreSQL refuses to run as root. As root, `initdb` and `postgres` run as the `postgres`
  system user, which owns the directory.
- The directory (data, Unix socket, log) is a short path under /tmp: Unix socket paths are
  limited to about 100 bytes, and the `postgres` user cannot read anything under /root (where
  Bazel's output base is).

Clients connect over TCP on 127.0.0.1 as the superuser `postgres`, with trust authentication.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import psycopg
from psycopg import sql

SUPERUSER = "postgres"
_SYSTEM_USER = "postgres"

# PostgreSQL's defaults are durable: fsync and synchronous_commit on. Only the number of
# connections is raised, for load tests with many clients.
DURABLE: Mapping[str, str] = {"max_connections": "300"}
# For tests: durability is irrelevant for throw-away databases; speed is not.
FAST_UNSAFE: Mapping[str, str] = {**DURABLE, "fsync": "off", "full_page_writes": "off"}


class PostgresError(RuntimeError):
    """PostgreSQL could not be set up or started; the message says why (with its log's tail)."""


def postgres_bindir() -> Path:
    """Directory of the PostgreSQL server binaries: $PG_BINDIR, `pg_config --bindir`, or Debian's."""
    if env := os.environ.get("PG_BINDIR"):
        return Path(env)
    candidates = []
    if pg_config := shutil.which("pg_config", path="/usr/bin:/usr/local/bin:" + os.environ.get("PATH", "")):
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    candidates += sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "postgres").is_file():
            return candidate
    raise PostgresError(
        "PostgreSQL server binaries (initdb, postgres) not found: install them "
        "(Debian: apt-get install postgresql) or set PG_BINDIR"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedPostgres:
    """One PostgreSQL server in its own temporary directory, for as long as it is needed."""

    host = "127.0.0.1"
    user = SUPERUSER

    def __init__(
        self,
        *,
        port: int = 0,
        settings: Mapping[str, str] = DURABLE,
        prefix: str = "tfpg-",
        keep: bool = False,
    ) -> None:
        """`port` 0 picks a free one; `settings` become `-c name=value`; `keep` leaves the
        directory in place after `stop()` (it is removed by default)."""
        self.bindir = postgres_bindir()
        self.port = port or free_port()
        self.settings = dict(settings)
        self.keep = keep
        self._prefix = prefix
        self.base: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        assert self.base is not None, "not started"
        return self.base / "data"

    @property
    def log_path(self) -> Path:
        assert self.base is not None, "not started"
        return self.base / "postgres.log"

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host={self.host} port={self.port} user={self.user} dbname={dbname}"

    def env(self, dbname: str) -> dict[str, str]:
        """The services' DB_* variables for a database of this server."""
        return {
            "DB_HOST": self.host,
            "DB_PORT": str(self.port),
            "DB_USER": self.user,
            "DB_NAME": dbname,
            "DB_SSLMODE": "disable",
        }

    def start(self, output: IO[Any] | int | None = None, timeout: float = 30.0) -> None:
        """`prepare()`, `launch(output)` and `wait_ready()`: a server that accepts connections."""
        try:
            self.prepare()
            self.launch(output)
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def prepare(self) -> None:
        """Creates the directory (owned by the `postgres` user when we are root) and runs initdb."""
        self.base = Path(tempfile.mkdtemp(prefix=self._prefix, dir="/tmp"))
        if os.geteuid() == 0:
            owner = pwd.getpwnam(_SYSTEM_USER)
            os.chown(self.base, owner.pw_uid, owner.pw_gid)
        self.base.chmod(0o755)
        self._initdb()

    def launch(self, output: IO[Any] | int | None = None) -> subprocess.Popen[bytes]:
        """Starts the server. Its log goes to `output` (a file, or subprocess.PIPE for the
        caller to read from `process.stdout`), by default to `log_path`."""
        settings = {
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": str(self.base),
            **self.settings,
        }
        command = [str(self.bindir / "postgres"), "-D", str(self.data_dir)]
        for name, value in settings.items():
            command += ["-c", f"{name}={value}"]
        log = self.log_path.open("ab") if output is None else None
        try:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log or output,
                stderr=subprocess.STDOUT,
                # Its own process group: a Ctrl-C at the terminal goes to whoever started it,
                # which then stops it in order (after the services that use it).
                start_new_session=True,
                **self._as_owner(),
            )
        finally:
            if log is not None:
                log.close()
        return self.process

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Waits until the server accepts connections; raises PostgresError if it exits first."""
        assert self.process is not None, "not launched"
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise PostgresError(f"postgres exited with {self.process.returncode} at start-up{self._log_tail()}")
            # What pg_ctl waits for: the postmaster writes "ready" into its pid file once it
            # accepts connections (connecting earlier only logs "the database system is
            # starting up" errors). Then one real connection to be sure.
            if self._pid_file_status() == "ready":
                try:
                    with psycopg.connect(self.dsn(), connect_timeout=2):
                        return
                except psycopg.OperationalError as error:
                    if time.monotonic() > deadline:
                        raise PostgresError(
                            f"postgres not ready after {timeout:g} s: {error}{self._log_tail()}"
                        ) from None
            elif time.monotonic() > deadline:
                raise PostgresError(f"postgres not ready after {timeout:g} s{self._log_tail()}")
            time.sleep(0.05)

    def _pid_file_status(self) -> str:
        """The postmaster's status line of postmaster.pid ("starting", "ready", ...), or ""."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return ""
        return lines[7].strip() if len(lines) > 7 else ""

    def stop(self, timeout: float = 15.0) -> None:
        """Stops the server (fast shutdown: sessions are disconnected, nothing is lost) and,
        unless `keep`, removes its directory."""
        if self.process is not None and self.process.poll() is None:
            # SIGINT is PostgreSQL's fast shutdown, what `pg_ctl stop -m fast` sends; we own
            # the process, so there is no need for pg_ctl (and, as root, another user switch).
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()  # the postmaster's children exit when it is gone
                self.process.wait(10)
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        if self.base is not None and not self.keep:
            shutil.rmtree(self.base, ignore_errors=True)

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _as_owner(self) -> dict[str, Any]:
        """Popen arguments that run a child as the owner of the directory."""
        kwargs: dict[str, Any] = {"cwd": self.base}  # our own cwd may be unreadable for the owner
        if os.geteuid() == 0:
            owner = pwd.getpwnam(_SYSTEM_USER)
            kwargs.update(user=owner.pw_uid, group=owner.pw_gid, extra_groups=[])
            kwargs["env"] = {
                **os.environ,
                "HOME": owner.pw_dir,
                "USER": _SYSTEM_USER,
                "LOGNAME": _SYSTEM_USER,
            }
        return kwargs

    def _initdb(self) -> None:
        command = [
            str(self.bindir / "initdb"),
            "--pgdata",
            str(self.data_dir),
            "--username",
            SUPERUSER,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--locale",
            "C",
            # Syncing a directory that is thrown away afterwards is wasted time; the server's
            # own settings decide the durability of what is written while it runs.
            "--no-sync",
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False, **self._as_owner())
        if result.returncode != 0:
            raise PostgresError(f"initdb failed ({result.returncode}): {result.stderr.strip()}")

    def _log_tail(self) -> str:
        if self.base is None or not self.log_path.exists():
            return ""
        lines = self.log_path.read_text(errors="replace").strip().splitlines()[-10:]
        return "\n" + "\n".join(lines) if lines else ""
