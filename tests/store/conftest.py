"""The store fixtures: every test in tests/store runs on SQLite (a real file) and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.jobs import NewJob, Source
from core.store.base import SqlJobStore
from tests.conftest import free_port, service_missing


class Clock:
    """A clock the test moves by hand; starts at a time with microseconds."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of each kind: a SQLite file in tmp_path, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'jobs.db'}"
    return request.getfixturevalue("pg_url")


async def open_test_store(url: str, clock: Clock, *, migrate: bool = True) -> SqlJobStore:
    """A store on `url` with the test clock."""
    store: SqlJobStore
    if url.startswith("sqlite:///"):
        from core.store.sqlite import SqliteJobStore

        store = await SqliteJobStore.open(url.removeprefix("sqlite:///"), clock=clock)
    else:
        from core.store.postgres import PostgresJobStore

        store = await PostgresJobStore.connect(url, clock=clock)
    if migrate:
        await store.migrate()
    return store


@pytest.fixture
async def store(database_url: str, clock: Clock) -> AsyncIterator[SqlJobStore]:
    opened = await open_test_store(database_url, clock)
    try:
        yield opened
    finally:
        await opened.close()


def new_job(n: int = 0, **overrides: object) -> NewJob:
    """A webhook job with a few filled fields."""
    values: dict[str, object] = {
        "source": Source.WEBHOOK,
        "requester": f"client-{n}",
        "reply_to": {"callback_url": "https://example.com/hook", "metadata": {"n": n}},
        "options": {"region": "auto"},
        "input_key": f"inputs/job{n}/clip.mp4",
        "input_filename": "clip.mp4",
        "input_size_bytes": 12345,
    }
    values.update(overrides)
    return NewJob(**values)  # type: ignore[arg-type]


PGBOUNCER_CONFIG = """\
[databases]
* = host=127.0.0.1 port={pg_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {dir}/userlist.txt
pool_mode = transaction
default_pool_size = 2
max_client_conn = 50
server_reset_query =
{user_line}
"""


class Pgbouncer:
    """A real pgbouncer in transaction mode in front of one test database."""

    def __init__(self, binary: str, pg_url: str) -> None:
        import os
        import tempfile
        from urllib.parse import urlsplit

        self.port = free_port()
        parts = urlsplit(pg_url)
        self.url = f"{parts.scheme}://{parts.username}@127.0.0.1:{self.port}{parts.path}"
        self.binary = binary
        self.workdir = Path(tempfile.mkdtemp(prefix="bl-pgbouncer-"))
        self.workdir.chmod(0o755)  # pgbouncer drops root privileges before reading some files
        (self.workdir / "userlist.txt").write_text(f'"{parts.username}" ""\n')
        self.config = self.workdir / "pgbouncer.ini"
        user_line = "user = nobody" if os.geteuid() == 0 else ""
        self.config.write_text(
            PGBOUNCER_CONFIG.format(
                pg_port=parts.port, port=self.port, dir=self.workdir, user_line=user_line
            )
        )
        for path in self.workdir.iterdir():
            path.chmod(0o644)
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start it and wait until it accepts connections."""
        self.proc = await asyncio.create_subprocess_exec(
            self.binary,
            str(self.config),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(200):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                if self.proc.returncode is not None:
                    err = await self.proc.stderr.read() if self.proc.stderr else b""
                    pytest.fail(f"pgbouncer did not start: {err.decode(errors='replace')[-500:]}")
                await asyncio.sleep(0.05)
                continue
            writer.close()
            await writer.wait_closed()
            return
        pytest.fail("pgbouncer did not open its port")

    async def stop(self) -> None:
        """Stop it (the process this fixture started, by its own handle)."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()
        self.proc = None


@pytest.fixture
async def pgbouncer(pg_url: str) -> AsyncIterator[Pgbouncer]:
    """`pg_url` through a real pgbouncer in transaction mode (skips when it is not installed, fails in CI).

    pgbouncer before 1.21 keeps no prepared statements across transactions, exactly like
    Supabase's transaction pooler, so only a client that does without them works here.
    """
    import shutil

    binary = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")
    if binary is None:
        service_missing("pgbouncer (apt-get install pgbouncer; .ci/run installs it)")
    bouncer = Pgbouncer(binary, pg_url)
    try:
        await bouncer.start()
        yield bouncer
    finally:
        await bouncer.stop()
        shutil.rmtree(bouncer.workdir, ignore_errors=True)


@pytest.fixture
def pgbouncer_url(pgbouncer: Pgbouncer) -> str:
    return pgbouncer.url
