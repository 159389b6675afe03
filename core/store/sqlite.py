"""The embedded JobStore: one SQLite file through aiosqlite.

WAL mode lets readers go on while one process writes, and a busy timeout makes a
writer wait for another process's transaction (web and worker share the file under
`blanklogo dev`). Inside one process the store keeps a single connection and runs one
statement or transaction at a time on it; conditional updates run in `BEGIN IMMEDIATE`
transactions that take the write lock up front, then check the changed-row count.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import aiosqlite

from core.errors import StoreError
from core.store import rows, schema
from core.store.base import JOB_SELECT, Row, SqlJobStore

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000


def _probe(path: str) -> None:
    sqlite3.connect(path).execute("PRAGMA schema_version").connection.close()


class SqliteJobStore(SqlJobStore):
    """`bl_jobs` and `bl_audit` in one SQLite file."""

    dialect = rows.SQLITE

    def __init__(self, conn: aiosqlite.Connection, path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._conn = conn
        self._lock = asyncio.Lock()
        self._closed = False
        self.path = path

    @classmethod
    async def open(
        cls, path: Path | str, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS, **kwargs: Any
    ) -> SqliteJobStore:
        """Open (creating it and its directory when missing) the database file at `path`."""
        path = str(path)
        try:
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                # open it once here first: when aiosqlite's own connect fails, its worker
                # thread outlives the call and may report to an event loop already closed
                await asyncio.to_thread(_probe, path)
            conn = await aiosqlite.connect(path, isolation_level=None)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open the SQLite database {path}: {exc}") from exc
        conn.row_factory = aiosqlite.Row
        store = cls(conn, path, **kwargs)
        try:
            async with store._guard():
                # busy_timeout first: switching to WAL needs a lock another process may hold
                await conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
                await conn.execute("PRAGMA journal_mode = WAL")
                await conn.execute("PRAGMA synchronous = NORMAL")
        except StoreError:
            await conn.close()
            raise
        return store

    async def close(self) -> None:
        """Close the connection."""
        async with self._lock:
            if not self._closed:
                self._closed = True
                await self._conn.close()

    @asynccontextmanager
    async def _guard(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            if self._closed:
                raise StoreError(f"the SQLite store {self.path} is closed")
            try:
                yield self._conn
            except (sqlite3.Error, OSError) as exc:
                raise StoreError(f"SQLite database error ({self.path}): {exc}") from exc

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._guard() as conn:
            if conn.in_transaction:
                # a task cancelled while its BEGIN/COMMIT ran in aiosqlite's thread left it
                # open; we hold the lock, so no live transaction of ours can be in it
                log.warning("rolling back a transaction a cancelled task left open")
                await conn.execute("ROLLBACK")
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")

    async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        async with self._guard() as conn:
            found = await conn.execute_fetchall(sql, tuple(params))
            return cast(list[Row], list(found))

    async def _execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self._guard() as conn:
            cursor = await conn.execute(sql, tuple(params))
            changed = cursor.rowcount
            await cursor.close()
            return changed

    async def _update_returning(self, sql: str, params: Sequence[Any], job_id: str) -> Row | None:
        async with self._transaction() as conn:
            cursor = await conn.execute(sql, tuple(params))
            changed = cursor.rowcount
            await cursor.close()
            if changed != 1:
                return None
            found = list(
                await conn.execute_fetchall(
                    f"SELECT {JOB_SELECT} FROM bl_jobs WHERE id = ?", (job_id,)
                )
            )
            return cast(Row, found[0]) if found else None

    async def migrate(self) -> list[str]:
        """Apply pending versioned SQL migrations; return the versions applied now."""
        applied_now: list[str] = []
        async with self._transaction() as conn:
            await conn.execute(schema.CREATE_TABLE)
            done = {
                r[0] for r in await conn.execute_fetchall("SELECT version FROM schema_migrations")
            }
            for migration in schema.pending(schema.load("sqlite"), done):
                for statement in schema.split_statements(migration.sql):
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                    (migration.version, rows.SQLITE.encode_time(self._now())),
                )
                applied_now.append(migration.version)
        for version in applied_now:
            log.info("applied migration %s to %s", version, self.path)
        return applied_now
