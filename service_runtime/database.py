"""The PostgreSQL connection pool of a service: bounded, opened and checked at start-up."""

from __future__ import annotations

import logging

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from service_runtime.config import DatabaseSettings

log = logging.getLogger(__name__)


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached; the message says where and why, without the password."""


async def open_pool(settings: DatabaseSettings, *, name: str) -> AsyncConnectionPool:
    """Opens a pool of `pool_min_size`..`pool_max_size` autocommit connections and waits until
    the first ones are connected, so a bad address or password stops start-up at once."""
    # One plain connection first: its error says exactly what is wrong, where the pool would
    # keep retrying (and logging) until its timeout.
    if reason := await _connect_error(settings):
        raise DatabaseUnavailable(f"cannot connect to {settings.describe()}: {reason}")
    pool = AsyncConnectionPool(
        settings.conninfo(),
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        # Each use case states its transaction explicitly (`conn.transaction()`); a single
        # statement runs on its own, without a BEGIN/COMMIT round trip around it.
        kwargs={"autocommit": True},
        open=False,
        name=name,
        timeout=settings.connect_timeout,
    )
    try:
        await pool.open(wait=True, timeout=settings.connect_timeout)
    except PoolTimeout as error:
        await pool.close()
        raise DatabaseUnavailable(
            f"cannot connect to {settings.describe()}: no connection within {settings.connect_timeout:g} s"
        ) from error
    log.info("connected to %s (pool %d..%d)", settings.describe(), settings.pool_min_size, settings.pool_max_size)
    return pool


async def _connect_error(settings: DatabaseSettings) -> str | None:
    """Why a connection cannot be made, or None when it can."""
    try:
        conn = await psycopg.AsyncConnection.connect(settings.conninfo())
    except psycopg.Error as error:
        return (str(error).strip().splitlines() or [type(error).__name__])[0]
    await conn.close()
    return None


async def is_reachable(pool: AsyncConnectionPool, timeout: float = 2.0) -> bool:
    """True when a connection can be had and answers `SELECT 1` within `timeout` seconds."""
    try:
        async with pool.connection(timeout=timeout) as conn:
            await conn.execute("SELECT 1")
    except (psycopg.Error, PoolTimeout):
        return False
    return True
