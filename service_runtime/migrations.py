"""Versioned SQL migrations, applied at start-up and by each service's `migrate` command.

A service keeps its migrations as `NNNN_description.sql` files in a `migrations` directory of
its package. Each file is applied once, in version order, inside its own transaction, and
recorded in `schema_migrations` with a checksum; a recorded migration whose file has since
changed stops start-up. Replicas starting together are safe: the whole run holds a
PostgreSQL advisory lock, so the second replica waits and then finds nothing to do.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

import psycopg

from service_runtime.database import DatabaseUnavailable

log = logging.getLogger(__name__)

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""
# Any constant works as long as every replica of a service uses the same; hashing the
# service's name keeps two services sharing one database from blocking each other.
_LOCK = "SELECT pg_advisory_lock(hashtext(%s))"
_UNLOCK = "SELECT pg_advisory_unlock(hashtext(%s))"
_APPLIED = "SELECT version, name, checksum FROM schema_migrations ORDER BY version"
_RECORD = "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)"


class MigrationError(RuntimeError):
    """The migrations on disk and those recorded in the database disagree, or one failed."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(package: str, directory: str = "migrations") -> list[Migration]:
    """Reads `<package>/<directory>/NNNN_name.sql`, ordered by version."""
    root: Traversable = resources.files(package) / directory
    found: list[Migration] = []
    for entry in root.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE_NAME.match(entry.name)
        if match is None:
            raise MigrationError(f"{package}/{directory}/{entry.name}: name must be NNNN_description.sql")
        found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"{package}/{directory}: two migrations share a version number")
    return found


async def migrate_package(conninfo: str, package: str) -> int:
    """Applies a service package's migrations (see the module docstring); returns how many."""
    applied = await apply_migrations(conninfo, load_migrations(package), lock_name=f"ticketflow.{package}.migrations")
    return len(applied)


async def apply_migrations(conninfo: str, migrations: list[Migration], *, lock_name: str) -> list[Migration]:
    """Applies what is not yet applied; returns the migrations applied by this call."""
    applied_now: list[Migration] = []
    try:
        connection = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
    except psycopg.OperationalError as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise DatabaseUnavailable(f"cannot connect to apply migrations: {reason}") from error
    async with connection as conn:
        await conn.execute(_LOCK, (lock_name,))
        try:
            await conn.execute(_CREATE_TABLE)
            cursor = await conn.execute(_APPLIED)
            recorded = {version: (name, checksum) for version, name, checksum in await cursor.fetchall()}
            for migration in migrations:
                if migration.version in recorded:
                    name, checksum = recorded[migration.version]
                    if checksum != migration.checksum:
                        raise MigrationError(
                            f"migration {migration.version:04d}_{name} was changed after it was applied; "
                            "add a new migration instead"
                        )
                    continue
                try:
                    async with conn.transaction():
                        await conn.execute(migration.sql)
                        await conn.execute(_RECORD, (migration.version, migration.name, migration.checksum))
                except psycopg.Error as error:
                    raise MigrationError(
                        f"migration {migration.version:04d}_{migration.name} failed: {error}"
                    ) from error
                log.info("applied migration %04d_%s", migration.version, migration.name)
                applied_now.append(migration)
            known = {m.version for m in migrations}
            unknown = sorted(set(recorded) - known)
            if unknown:
                log.warning("database has migrations this build does not know: %s", unknown)
        finally:
            await conn.execute(_UNLOCK, (lock_name,))
    return applied_now
