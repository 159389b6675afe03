"""The production JobStore: PostgreSQL (Supabase or any other) through an asyncpg pool.

Conditional updates are single `UPDATE … WHERE <condition> RETURNING …` statements, so
the database decides races (two claims, a heartbeat against the reaper) row by row.

Supabase's Supavisor and pgbouncer in *transaction* mode hand each transaction to any
server connection, so a prepared statement made on one may be missing on the next.
The pooler URL is therefore run with asyncpg's statement cache off
(`statement_cache_size=0`, unnamed statements only) when it asks for it in any of
these ways:

* `?prepared_statements=false` (also `0`, `no`, `off`),
* `?pgbouncer=true` (the flag Prisma users already put in Supabase pooler URLs),
* port 6543, Supabase's transaction pooler port.

Those two query parameters are ours and are removed before the DSN reaches asyncpg.
Migrations take a transaction-level advisory lock (`pg_advisory_xact_lock`), which,
unlike a session lock, also holds through a transaction pooler.

Pool: 1 to 10 connections, 10 s to connect, 60 s per statement. Error messages
name the server with the password masked and never include it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import asyncpg

from core.errors import ConfigError, StoreError
from core.store import rows, schema
from core.store.base import JOB_SELECT, Row, SqlJobStore

log = logging.getLogger(__name__)

POOLER_PORT = 6543
#: any fixed 64-bit number, the same in every process that migrates this database
MIGRATION_LOCK = 0x626C616E6B6C6F67  # "blanklog"
CREATE_MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
)
DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
_FALSE = {"false", "0", "no", "off", "disable", "disabled"}
_TRUE = {"true", "1", "yes", "on"}


def pooler_dsn(url: str) -> tuple[str, bool]:
    """The DSN for asyncpg without our own parameters, and whether prepared statements are off."""
    parts = urlsplit(url)
    try:
        pooled = parts.port == POOLER_PORT
    except ValueError as exc:
        raise ConfigError(f"DATABASE_URL has a bad port: {masked_url(url)}") from exc
    kept = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "prepared_statements":
            pooled = pooled or value.lower() in _FALSE
        elif key == "pgbouncer":
            pooled = pooled or value.lower() in _TRUE
        else:
            kept.append((key, value))
    return urlunsplit(parts._replace(query=urlencode(kept))), pooled


def masked_url(url: str) -> str:
    """The URL with its password replaced by ***, fit for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def _password(url: str) -> str | None:
    password = urlsplit(url).password
    return unquote(password) if password else None


class PostgresJobStore(SqlJobStore):
    """`bl_jobs` and `bl_audit` in PostgreSQL."""

    dialect = rows.POSTGRES

    def __init__(self, pool: asyncpg.Pool, url: str, *, pooled: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pool = pool
        self._url = url
        #: whether prepared statements are off (transaction pooler)
        self.pooled = pooled

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 10.0,
        command_timeout: float = 60.0,
        **kwargs: Any,
    ) -> PostgresJobStore:
        """Open a pool on `url`; raise StoreError when the server cannot be reached."""
        dsn, pooled = pooler_dsn(url)
        try:
            pool = await asyncpg.create_pool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                timeout=connect_timeout,
                command_timeout=command_timeout,
                statement_cache_size=0 if pooled else 100,
            )
        except (*DRIVER_ERRORS, ValueError) as exc:
            raise StoreError(_message(url, "cannot connect to", exc)) from exc
        log.info(
            "connected to %s (pool %d-%d%s)",
            masked_url(url),
            min_size,
            max_size,
            ", prepared statements off" if pooled else "",
        )
        return cls(pool, url, pooled=pooled, **kwargs)

    async def close(self) -> None:
        """Close the pool."""
        await self._pool.close()

    @asynccontextmanager
    async def _errors(self) -> AsyncIterator[None]:
        try:
            yield
        except DRIVER_ERRORS as exc:
            raise StoreError(_message(self._url, "database error on", exc)) from exc

    async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        async with self._errors():
            return list(await self._pool.fetch(sql, *params))

    async def _execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self._errors():
            status = await self._pool.execute(sql, *params)
        # "UPDATE 1", "INSERT 0 1", "DELETE 0"
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def _update_returning(self, sql: str, params: Sequence[Any], job_id: str) -> Row | None:
        async with self._errors():
            return await self._pool.fetchrow(f"{sql} RETURNING {JOB_SELECT}", *params)

    async def migrate(self) -> list[str]:
        """Apply pending versioned SQL migrations; return the versions applied now."""
        applied_now: list[str] = []
        async with self._errors(), self._pool.acquire() as conn, conn.transaction():
            # waits for any other process migrating now, then sees what it applied
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await conn.execute(CREATE_MIGRATIONS_TABLE)
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for migration in schema.pending(schema.load("postgres"), done):
                await conn.execute(migration.sql)  # no arguments: may hold many statements
                await conn.execute(
                    "INSERT INTO schema_migrations (version) VALUES ($1)", migration.version
                )
                applied_now.append(migration.version)
        for version in applied_now:
            log.info("applied migration %s to %s", version, masked_url(self._url))
        return applied_now


def _message(url: str, what: str, exc: BaseException) -> str:
    text = f"{what} PostgreSQL at {masked_url(url)}: {exc.__class__.__name__}: {exc}"
    password = _password(url)
    if password:
        text = text.replace(password, "***")
    return text
