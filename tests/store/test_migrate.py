"""Migrations: versioned, applied once, safe when two processes start at once."""

from __future__ import annotations

import argparse
import asyncio

import pytest

from core.errors import StoreError
from core.store import add_arguments, open_store, run, schema
from core.store.base import SqlJobStore
from tests.store.conftest import Clock, open_test_store

ALL_VERSIONS = [m.version for m in schema.load("sqlite")]


def test_both_databases_have_the_same_migration_versions() -> None:
    assert ALL_VERSIONS == [m.version for m in schema.load("postgres")]
    assert ALL_VERSIONS[0] == "0001_init"


def test_sqlite_scripts_split_into_whole_statements() -> None:
    script = (
        "-- a comment\nCREATE TABLE a (x TEXT DEFAULT 'a;b');\n\nCREATE INDEX i ON a (x);\n-- end\n"
    )
    assert schema.split_statements(script) == [
        "-- a comment\nCREATE TABLE a (x TEXT DEFAULT 'a;b');",
        "CREATE INDEX i ON a (x);",
    ]
    with pytest.raises(ValueError, match="incomplete"):
        schema.split_statements("CREATE TABLE a (x TEXT")


async def test_migrate_applies_once_and_is_idempotent(database_url: str, clock: Clock) -> None:
    store = await open_test_store(database_url, clock, migrate=False)
    try:
        assert await store.migrate() == ALL_VERSIONS
        assert await store.migrate() == []
        await store.ping()
    finally:
        await store.close()


async def test_concurrent_migrations_apply_each_version_once(
    database_url: str, clock: Clock
) -> None:
    stores: list[SqlJobStore] = [
        await open_test_store(database_url, clock, migrate=False) for _ in range(3)
    ]
    try:
        results = await asyncio.gather(*(s.migrate() for s in stores))
        assert sorted(v for applied in results for v in applied) == sorted(ALL_VERSIONS)
        for store in stores:
            await store.ping()
    finally:
        for store in stores:
            await store.close()


async def test_ping_before_migration_raises_store_error(database_url: str, clock: Clock) -> None:
    store = await open_test_store(database_url, clock, migrate=False)
    try:
        with pytest.raises(StoreError):
            await store.ping()
    finally:
        await store.close()


async def test_open_store_migrates_the_database_it_names(database_url: str, make_settings) -> None:
    settings = make_settings(database_url=database_url)
    store = await open_store(settings)
    try:
        await store.ping()
        assert await store.migrate() == []
    finally:
        await store.close()


async def test_open_store_without_database_url_uses_data_dir(tmp_path, make_settings) -> None:
    settings = make_settings(database_url=None, data_dir=tmp_path / "new" / "var")
    store = await open_store(settings)
    try:
        await store.ping()
    finally:
        await store.close()
    assert (tmp_path / "new" / "var" / "blanklogo.db").is_file()


def test_migrate_command_prints_what_it_applied(database_url: str, capsys, monkeypatch) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--database-url", database_url])
    assert run(args) == 0
    out = capsys.readouterr().out
    assert "applied 0001_init" in out
    assert run(args) == 0
    assert "up to date" in capsys.readouterr().out


def test_migrate_command_fails_cleanly_on_a_bad_url(capsys) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert run(parser.parse_args(["--database-url", "mysql://x"])) == 1
    assert "DATABASE_URL must start with" in capsys.readouterr().err


async def test_schema_has_the_lookup_indexes(store: SqlJobStore) -> None:
    if store.dialect.name == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'bl_jobs'"
    else:
        sql = "SELECT indexname AS name FROM pg_indexes WHERE tablename = 'bl_jobs'"
    names = {r["name"] for r in await store._fetch(sql)}
    assert {
        "bl_jobs_status_created_at_idx",
        "bl_jobs_created_at_idx",
        "bl_jobs_lease_expires_at_idx",
        "bl_jobs_expires_at_idx",
    } <= names
