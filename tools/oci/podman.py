"""A throw-away podman for tests: its own storage and configuration, host networking, removed afterwards.

    reason = unavailable()          # None, or why podman cannot run here (then skip; fails in CI)
    with throwaway_podman() as podman:
        image = podman.load(Path("event_service/image.tar"))
        container = podman.run(image, "event", env={"HTTP_PORT": "18082"}, volumes={Path("/tmp/x"): "/etc/x"})
        ...

Nothing touches the machine's own podman storage: images and containers live in a temporary
directory (short, under /tmp: podman puts sockets there) with a containers.conf of its own,
the configuration these machines need: runc (crun fails with "cgroups in hybrid mode"), no
default ulimits (setrlimit is refused), cgroupfs (no systemd) and a file event log.
Containers run detached with `--network host`, so a service in one reaches 127.0.0.1 of the
machine, where the test's PostgreSQL listens, and with a read-only root file system and no
writable /tmp either, as compose.yaml runs them. Every command has a timeout.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from tools.supervisor.http import wait_for_http

_CONTAINERS_CONF = """\
[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""
_SEARCH_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"


def unavailable() -> str | None:
    """Why podman cannot run containers here, or None when it can."""
    podman = shutil.which("podman", path=_SEARCH_PATH)
    if podman is None:
        return "podman is not installed (on Debian, ./tools/bazel installs it: apt-get install podman runc)"
    if shutil.which("runc", path=_SEARCH_PATH) is None:
        return "runc is not installed (on Debian, ./tools/bazel installs it: apt-get install runc)"
    with throwaway_podman() as probe:
        result = probe.command("info", timeout=60, check=False)
    if result.returncode != 0:
        return f"`podman info` fails, podman cannot run here: {result.stderr.strip()}"
    return None


@dataclass
class Container:
    podman: Podman
    name: str

    def logs(self) -> str:
        result = self.podman.command("logs", self.name, check=False)
        return result.stdout + result.stderr

    def running(self) -> bool:
        result = self.podman.command("inspect", "--format", "{{.State.Running}}", self.name, check=False)
        return result.stdout.strip() == "true"

    def wait_http(self, url: str, timeout: float = 60.0) -> None:
        """Waits until GET `url` answers 200; fails at once with the logs if the container stops."""

        def alive() -> None:
            if not self.running():
                raise AssertionError(f"container {self.name} stopped:\n{self.logs()}")

        if wait_for_http(url, timeout=timeout, interval=0.2, alive=alive):
            return
        raise AssertionError(f"{url} did not answer 200 within {timeout} s:\n{self.logs()}")

    def healthcheck(self) -> subprocess.CompletedProcess[str]:
        """Runs the image's HEALTHCHECK once, as the engine's timer would."""
        return self.podman.command("healthcheck", "run", self.name, check=False, timeout=60)

    def stop(self, timeout: int = 30) -> int:
        """SIGTERM (the image's stop signal), then the exit code."""
        self.podman.command("stop", "--time", str(timeout), self.name, timeout=timeout + 30)
        result = self.podman.command("inspect", "--format", "{{.State.ExitCode}}", self.name)
        return int(result.stdout.strip())


class Podman:
    def __init__(self, base: Path) -> None:
        self.base = base
        (base / "containers.conf").write_text(_CONTAINERS_CONF, encoding="utf-8")
        self._env = {"CONTAINERS_CONF": str(base / "containers.conf"), "PATH": _SEARCH_PATH, "HOME": str(base)}
        self._global = ["--root", str(base / "root"), "--runroot", str(base / "run"), "--tmpdir", str(base / "tmp")]
        self._containers: list[str] = []

    def command(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["podman", *self._global, *args],
            env=self._env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"podman {' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
            )
        return result

    def load(self, archive: Path) -> str:
        """Loads an image archive; returns its image ID."""
        output = self.command("load", "--input", str(archive), timeout=300).stdout
        # "Loaded image: localhost/ticketflow/event_service:latest" (or "Loaded image(s): ...")
        names = [line.split(":", 1)[1].strip() for line in output.splitlines() if line.startswith("Loaded image")]
        if not names:
            raise AssertionError(f"podman load named no image:\n{output}")
        return self.command("image", "inspect", "--format", "{{.Id}}", names[-1]).stdout.strip()

    def run(
        self,
        image: str,
        name: str,
        env: dict[str, str],
        args: tuple[str, ...] = (),
        volumes: Mapping[Path, str] | None = None,
    ) -> Container:
        """Starts a detached container with host networking and a read-only root file system;
        `volumes` (host directory -> path in the container) are mounted read-only."""
        unique = f"{name}-{self.base.name}"
        env_args = [item for key, value in sorted(env.items()) for item in ("--env", f"{key}={value}")]
        volume_args = [item for host, inside in (volumes or {}).items() for item in ("--volume", f"{host}:{inside}:ro")]
        self._containers.append(unique)
        self.command(
            "run",
            "--detach",
            "--read-only",
            "--read-only-tmpfs=false",
            "--name",
            unique,
            "--network",
            "host",
            *env_args,
            *volume_args,
            image,
            *args,
        )
        return Container(self, unique)

    def close(self) -> None:
        for name in self._containers:
            self.command("rm", "--force", "--time", "5", name, check=False, timeout=60)
        self.command("rmi", "--all", "--force", check=False, timeout=120)


@contextlib.contextmanager
def throwaway_podman() -> Iterator[Podman]:
    base = Path(tempfile.mkdtemp(prefix="tfpod-", dir="/tmp"))
    podman = Podman(base)
    try:
        yield podman
    finally:
        podman.close()
        shutil.rmtree(base, ignore_errors=True)
