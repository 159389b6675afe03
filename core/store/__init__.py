"""The job store: `open_store(settings)` and the `blanklogo migrate` command.

`DATABASE_URL` chooses the database:

* `postgresql://…` or `postgres://…` — PostgreSQL through an asyncpg pool (Supabase's
  direct or pooler URL; see `core.store.postgres` for the transaction pooler);
* `sqlite:///relative/path.db`, `sqlite:////absolute/path.db` — that SQLite file;
* unset — the SQLite file `DATA_DIR/blanklogo.db` (directories are created).

`open_store` applies pending migrations when it opens the database, as a convenience for
development and small installs; `open_store(settings, migrate=False)` leaves the schema
to `blanklogo migrate`, which applies them and prints what it did.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from datetime import timedelta
from pathlib import Path

from core.errors import ConfigError, StoreError
from core.ports import JobStore
from core.settings import Settings

log = logging.getLogger(__name__)

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
SQLITE_PREFIX = "sqlite:///"


def is_postgres(url: str | None) -> bool:
    """Whether DATABASE_URL names a PostgreSQL server."""
    return bool(url) and url.startswith(POSTGRES_SCHEMES)  # type: ignore[union-attr]


def sqlite_path(url: str | None, data_dir: Path) -> str:
    """The SQLite file a DATABASE_URL (or its absence) names."""
    if not url:
        return str(data_dir / "blanklogo.db")
    if url.startswith(SQLITE_PREFIX) and len(url) > len(SQLITE_PREFIX):
        return url[len(SQLITE_PREFIX) :]
    raise ConfigError(
        "DATABASE_URL must start with postgresql://, postgres:// or sqlite:/// "
        "(or be unset for the embedded SQLite file)"
    )


def describe(settings: Settings) -> str:
    """Where the store lives, fit to print (a password in the URL is masked)."""
    if is_postgres(settings.database_url):
        from core.store.postgres import masked_url

        return masked_url(settings.database_url or "")
    return f"sqlite {sqlite_path(settings.database_url, settings.data_dir)}"


async def open_store(settings: Settings, *, migrate: bool = True) -> JobStore:
    """Open the store DATABASE_URL names, applying pending migrations unless `migrate=False`."""
    ttl = timedelta(days=settings.result_ttl_days)
    store: JobStore
    if is_postgres(settings.database_url):
        from core.store.postgres import PostgresJobStore

        store = await PostgresJobStore.connect(settings.database_url or "", result_ttl=ttl)
    else:
        from core.store.sqlite import SqliteJobStore

        path = sqlite_path(settings.database_url, settings.data_dir)
        store = await SqliteJobStore.open(path, result_ttl=ttl)
    if migrate:
        try:
            applied = await store.migrate()
        except BaseException:
            await store.close()
            raise
        if applied:
            log.info("database migrated: applied %s", ", ".join(applied))
    return store


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `blanklogo migrate`."""
    parser.add_argument(
        "--database-url",
        help="database to migrate (default: DATABASE_URL, else the SQLite file in DATA_DIR)",
    )


def run(args: argparse.Namespace) -> int:
    """`blanklogo migrate`: apply pending migrations and print what was applied."""
    settings = Settings()
    if getattr(args, "database_url", None):
        settings = settings.model_copy(update={"database_url": args.database_url})
    try:
        return asyncio.run(_migrate(settings))
    except (StoreError, ConfigError) as exc:
        print(f"migrate failed: {exc}", file=sys.stderr)
        return 1


async def _migrate(settings: Settings) -> int:
    store = await open_store(settings, migrate=False)
    try:
        applied = await store.migrate()
    finally:
        await store.close()
    where = describe(settings)
    if applied:
        for version in applied:
            print(f"applied {version}")
        print(f"{where}: {len(applied)} migration(s) applied")
    else:
        print(f"{where}: up to date, nothing to apply")
    return 0
