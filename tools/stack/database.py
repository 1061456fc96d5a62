"""The PostgreSQL the stack's services use: where it is, and their two databases in it.

Either a throw-away server (`tools.embedded_postgres`: the one the stack starts, or the tests'
session server), or an existing one given by the README's DB_* variables (the dev stack's
`--external-db`), read exactly as the services read them.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from service_runtime.config import DatabaseSettings, Env, Secret
from tools.embedded_postgres.server import EmbeddedPostgres


class DatabaseSetupError(RuntimeError):
    """The databases cannot be reached or created; one line saying why."""


@dataclass(frozen=True)
class DatabaseServer:
    host: str
    port: int
    user: str
    password: Secret
    sslmode: str

    @classmethod
    def from_env(cls) -> DatabaseServer:
        """The server the DB_* variables (environment, then .env) point at."""
        settings = DatabaseSettings.from_env(Env.load(), default_name="postgres")
        return cls(settings.host, settings.port, settings.user, settings.password, settings.sslmode)

    @classmethod
    def embedded(cls, server: EmbeddedPostgres) -> DatabaseServer:
        """A throw-away server: its superuser, trust authentication, no TLS on loopback."""
        return cls(server.host, server.port, server.user, Secret(""), "disable")

    def service_env(self, dbname: str) -> dict[str, str]:
        """The DB_* variables of a service using database `dbname`."""
        env = {
            "DB_HOST": self.host,
            "DB_PORT": str(self.port),
            "DB_USER": self.user,
            "DB_NAME": dbname,
            "DB_SSLMODE": self.sslmode,
        }
        if self.password.reveal():
            env["DB_PASSWORD"] = self.password.reveal()
        return env

    def dsn(self, dbname: str) -> str:
        """A libpq connection string without the password (libpq reads PGPASSWORD)."""
        return f"host={self.host} port={self.port} user={self.user} dbname={dbname}"

    def ensure_databases(self, names: list[str]) -> list[str]:
        """Creates those of `names` that do not exist; returns the ones it created."""
        try:
            with psycopg.connect(
                self.dsn("postgres"),
                password=self.password.reveal() or None,
                sslmode=self.sslmode,
                autocommit=True,
                connect_timeout=5,
            ) as conn:
                existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
                created = [name for name in names if name not in existing]
                for name in created:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.Error as error:
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise DatabaseSetupError(f"PostgreSQL at {self.host}:{self.port} as {self.user}: {reason}") from None
        return created
