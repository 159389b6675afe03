"""The versioned plain-SQL migrations in `migrations/<dialect>/NNNN_name.sql`.

A version is the file's name without `.sql`; `schema_migrations` records the applied ones.
Each store applies the pending ones in order, inside one transaction under a lock, so
two processes starting at once apply each migration exactly once.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

CREATE_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version TEXT PRIMARY KEY NOT NULL, applied_at TEXT NOT NULL)"
)


@dataclass(frozen=True)
class Migration:
    version: str
    sql: str


def load(dialect: str) -> list[Migration]:
    """Every migration for `dialect` ("postgres" or "sqlite"), oldest first."""
    files = sorted((MIGRATIONS_DIR / dialect).glob("[0-9]*.sql"))
    return [Migration(f.stem, f.read_text(encoding="utf-8")) for f in files]


def pending(migrations: list[Migration], applied: set[str]) -> list[Migration]:
    """The migrations not applied yet, in order."""
    return [m for m in migrations if m.version not in applied]


def split_statements(script: str) -> list[str]:
    """A SQLite script as single statements (sqlite3's executescript would COMMIT first)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statement = buffer.strip()
            if _has_code(statement):
                statements.append(statement)
            buffer = ""
    if _has_code(buffer):
        raise ValueError(f"incomplete SQL statement at the end of a migration: {buffer[:80]!r}")
    return statements


def _has_code(text: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in text.splitlines())
