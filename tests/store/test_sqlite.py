"""SQLite specifics: WAL mode, the file on disk, unusable paths, a second process's lock."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from core.errors import StoreError
from core.jobs import JobState
from core.store.sqlite import SqliteJobStore
from tests.store.conftest import new_job


async def test_database_file_is_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    store = await SqliteJobStore.open(tmp_path / "a" / "b" / "jobs.db")
    try:
        mode = await store._fetch("PRAGMA journal_mode")
        timeout = await store._fetch("PRAGMA busy_timeout")
        assert mode[0][0] == "wal"
        assert timeout[0][0] > 0
    finally:
        await store.close()


async def test_two_stores_on_one_file_see_each_others_claims(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    web, worker = await SqliteJobStore.open(path), await SqliteJobStore.open(path)
    try:
        await web.migrate()
        job, _ = await web.create(new_job())
        assert await worker.claim(job.id, "w1", 300) is not None
        assert await web.claim(job.id, "w2", 300) is None
        assert (await web.get(job.id)).status is JobState.PROCESSING  # type: ignore[union-attr]
    finally:
        await web.close()
        await worker.close()


async def test_a_write_lock_held_too_long_raises_store_error(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    store = await SqliteJobStore.open(path, busy_timeout_ms=100)
    await store.migrate()
    job, _ = await store.create(new_job())
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        with pytest.raises(StoreError, match="locked"):
            await store.claim(job.id, "w", 300)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert await store.claim(job.id, "w", 300) is not None
    await store.close()


async def test_unusable_path_raises_store_error(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StoreError):
        store = await SqliteJobStore.open(tmp_path / "dir.db")
        await store.close()
