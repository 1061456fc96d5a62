"""Configuration from environment variables and an optional `.env` file.

The environment wins over `.env`. Every value is read once, cast explicitly, and a missing or
malformed one raises `ConfigError` naming the variable, which the entry points print as one
line before exiting. Secrets are wrapped in `Secret` so that they never show up in a repr or
a log line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from psycopg.conninfo import make_conninfo

_SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


class ConfigError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


class Secret:
    """A string that does not print itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def parse_env_file(text: str, source: str = ".env") -> dict[str, str]:
    """Parses `KEY=value` lines; `#` comments, blank lines, `export ` and quotes are allowed."""
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ConfigError(f"{source}:{number}: expected KEY=value, got {raw.strip()!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key] = value
    return values


class Env:
    """Typed access to the process environment layered over a `.env` file."""

    def __init__(self, environ: Mapping[str, str], dotenv: Mapping[str, str] | None = None) -> None:
        self._values = {**(dotenv or {}), **environ}

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None) -> Env:
        """The environment plus `.env` ($ENV_FILE, else `.env` in the directory it was started from)."""
        environ = dict(os.environ if environ is None else environ)
        explicit = environ.get("ENV_FILE")
        # `bazel run` starts programs inside their runfiles; BUILD_WORKING_DIRECTORY is where
        # the user typed the command, which is where a user's .env lives.
        start_dir = environ.get("BUILD_WORKING_DIRECTORY") or os.getcwd()
        path = Path(explicit) if explicit else Path(start_dir) / ".env"
        dotenv: dict[str, str] = {}
        if path.is_file():
            dotenv = parse_env_file(path.read_text(encoding="utf-8"), str(path))
        elif explicit:
            raise ConfigError(f"ENV_FILE: {explicit} does not exist")
        return cls(environ, dotenv)

    def _raw(self, name: str, default: str | None) -> str:
        value = self._values.get(name)
        if value is None or value == "":
            if default is None:
                raise ConfigError(f"{name} is required but not set")
            return default
        return value

    def text(self, name: str, default: str | None = None, *, max_length: int = 1024) -> str:
        value = self._raw(name, default)
        if len(value) > max_length:
            raise ConfigError(f"{name}: longer than {max_length} characters")
        return value

    def secret(self, name: str, default: str = "") -> Secret:
        return Secret(self._values.get(name, default))

    def integer(self, name: str, default: int | None = None, *, min: int | None = None, max: int | None = None) -> int:
        raw = self._raw(name, None if default is None else str(default))
        try:
            value = int(raw, 10)
        except ValueError:
            raise ConfigError(f"{name}: expected an integer, got {raw!r}") from None
        if (min is not None and value < min) or (max is not None and value > max):
            raise ConfigError(f"{name}: {value} is outside {min}..{max}")
        return value

    def number(self, name: str, default: float | None = None, *, min: float = 0.0) -> float:
        raw = self._raw(name, None if default is None else repr(default))
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name}: expected a number, got {raw!r}") from None
        if not value >= min or value == float("inf"):
            raise ConfigError(f"{name}: {raw} must be a finite number >= {min}")
        return value

    def port(self, name: str, default: int) -> int:
        return self.integer(name, default, min=0, max=65535)

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self._raw(name, default)
        if value not in choices:
            raise ConfigError(f"{name}: {value!r} is not one of {', '.join(choices)}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = self._raw(name, "true" if default else "false").lower()
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name}: expected true or false, got {raw!r}")


@dataclass(frozen=True)
class DatabaseSettings:
    """Where a service's PostgreSQL is, and how many connections it may use."""

    host: str
    port: int
    user: str
    password: Secret
    name: str
    sslmode: str
    pool_min_size: int
    pool_max_size: int
    connect_timeout: float

    @classmethod
    def from_env(cls, env: Env, *, default_name: str) -> DatabaseSettings:
        pool_min = env.integer("DB_POOL_MIN_SIZE", 2, min=1, max=1000)
        pool_max = env.integer("DB_POOL_MAX_SIZE", 10, min=1, max=1000)
        if pool_max < pool_min:
            raise ConfigError(f"DB_POOL_MAX_SIZE: {pool_max} is smaller than DB_POOL_MIN_SIZE {pool_min}")
        return cls(
            host=env.text("DB_HOST", "localhost"),
            port=env.port("DB_PORT", 5432),
            user=env.text("DB_USER", "postgres"),
            password=env.secret("DB_PASSWORD"),
            name=env.text("DB_NAME", default_name, max_length=63),
            sslmode=env.choice("DB_SSLMODE", "prefer", _SSL_MODES),
            pool_min_size=pool_min,
            pool_max_size=pool_max,
            connect_timeout=env.number("DB_CONNECT_TIMEOUT", 10.0, min=0.1),
        )

    def conninfo(self) -> str:
        """A libpq connection string (the password included: never log it; log `describe()`)."""
        return make_conninfo(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password.reveal() or None,
            dbname=self.name,
            sslmode=self.sslmode,
            connect_timeout=max(1, round(self.connect_timeout)),
            application_name="ticketflow",
        )

    def describe(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.name} (sslmode={self.sslmode})"


@dataclass(frozen=True)
class ServerSettings:
    """Where a service listens and how it stops."""

    host: str
    http_port: int
    grpc_port: int
    shutdown_grace: float
    max_body_bytes: int
    log_level: str
    access_log: bool

    @classmethod
    def from_env(cls, env: Env, *, default_http_port: int, default_grpc_port: int) -> ServerSettings:
        return cls(
            host=env.text("SERVER_HOST", "0.0.0.0"),
            http_port=env.port("HTTP_PORT", default_http_port),
            grpc_port=env.port("GRPC_PORT", default_grpc_port),
            shutdown_grace=env.number("SHUTDOWN_GRACE_SECONDS", 10.0),
            max_body_bytes=env.integer("MAX_BODY_BYTES", 64 * 1024, min=1024, max=16 * 1024 * 1024),
            log_level=env.choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
            access_log=env.flag("ACCESS_LOG", False),
        )
