"""PostgreSQL specifics: the transaction pooler mode and an unreachable server."""

from __future__ import annotations

import asyncio

import pytest

from core.errors import StoreError
from core.jobs import JobState
from core.store.postgres import PostgresJobStore, masked_url, pooler_dsn
from tests.conftest import free_port
from tests.store.conftest import new_job


@pytest.mark.parametrize(
    ("url", "dsn", "pooled"),
    [
        (
            "postgresql://u:p@db.example.com:5432/postgres",
            "postgresql://u:p@db.example.com:5432/postgres",
            False,
        ),
        (
            "postgresql://u:p@pooler.supabase.com:6543/postgres",
            "postgresql://u:p@pooler.supabase.com:6543/postgres",
            True,
        ),
        (
            "postgres://u:p@h/db?pgbouncer=true&sslmode=require",
            "postgres://u:p@h/db?sslmode=require",
            True,
        ),
        ("postgresql://u:p@h/db?prepared_statements=false", "postgresql://u:p@h/db", True),
        ("postgresql://u:p@h/db?prepared_statements=true", "postgresql://u:p@h/db", False),
    ],
)
def test_pooler_urls_turn_prepared_statements_off(url: str, dsn: str, pooled: bool) -> None:
    assert pooler_dsn(url) == (dsn, pooled)


def test_masked_url_hides_the_password() -> None:
    assert (
        masked_url("postgresql://user:s3cret@host:5432/db") == "postgresql://user:***@host:5432/db"
    )
    assert masked_url("postgresql://host/db") == "postgresql://host/db"


async def _prepared_statements(store: PostgresJobStore) -> int:
    rows = await store._fetch("SELECT COUNT(*) AS n FROM pg_prepared_statements")
    return int(rows[0]["n"])


async def test_pooler_mode_runs_the_store_without_prepared_statements(pg_url: str) -> None:
    store = await PostgresJobStore.connect(f"{pg_url}?prepared_statements=false", max_size=1)
    try:
        assert store.pooled
        await store.migrate()
        job, _ = await store.create(new_job(idempotency_key="k"))
        assert (await store.create(new_job(idempotency_key="k")))[0] == job
        assert await store.claim(job.id, "w", 300) is not None
        assert await store.heartbeat(job.id, "w", 300, progress=50, step="x") is not None
        assert await store.move(job.id, JobState.COMPLETED, owner="w") is not None
        assert await store.claim_delivery(job.id)
        assert await _prepared_statements(store) == 0
    finally:
        await store.close()


async def test_direct_mode_keeps_prepared_statements(pg_url: str) -> None:
    store = await PostgresJobStore.connect(pg_url, max_size=1)
    try:
        await store.migrate()
        await store.create(new_job())
        await store.queued_ids()
        assert not store.pooled
        assert await _prepared_statements(store) > 0  # the control for the test above
    finally:
        await store.close()


async def test_unreachable_server_raises_store_error_without_the_password() -> None:
    url = f"postgresql://blanklogo:hunter2secret@127.0.0.1:{free_port()}/blanklogo"
    with pytest.raises(StoreError) as caught:
        await PostgresJobStore.connect(url, connect_timeout=2)
    assert "hunter2secret" not in str(caught.value)
    assert "***" in str(caught.value)


async def test_wrong_password_raises_store_error_without_the_password(pg_url: str) -> None:
    # the test server may trust local connections; then the password is simply unused
    url = pg_url.replace("postgresql://postgres@", "postgresql://nosuchuser:hunter2secret@")
    with pytest.raises(StoreError) as caught:
        await PostgresJobStore.connect(url, connect_timeout=2)
    assert "hunter2secret" not in str(caught.value)


async def test_closed_pool_raises_store_error(pg_url: str) -> None:
    store = await PostgresJobStore.connect(pg_url)
    await store.migrate()
    await store.close()
    with pytest.raises(StoreError):
        await store.get("x")


async def test_store_works_through_a_transaction_pooler(pgbouncer_url: str) -> None:
    store = await PostgresJobStore.connect(f"{pgbouncer_url}?pgbouncer=true")
    try:
        assert store.pooled
        assert await store.migrate() == ["0001_init", "0002_delivery_claim"]
        jobs = [
            job
            for job, _ in await asyncio.gather(
                *(store.create(new_job(n, idempotency_key=f"k{n % 10}")) for n in range(30))
            )
        ]
        assert len({job.id for job in jobs}) == 10
        claims = await asyncio.gather(
            *(store.claim(job.id, f"w{i}", 300) for i, job in enumerate(jobs))
        )
        assert len([c for c in claims if c is not None]) == 10
        for job in {c.id: c for c in claims if c is not None}.values():
            assert await store.heartbeat(job.id, job.lease_owner or "", 300, progress=5)
            assert await store.move(job.id, JobState.COMPLETED, owner=job.lease_owner)
        assert len(await store.finished_since(jobs[0].created_at)) == 10
        assert sum((await store.counts_by_state()).values()) == 10
    finally:
        await store.close()


async def test_store_fails_while_the_database_is_away_and_resumes_after(pgbouncer) -> None:
    store = await PostgresJobStore.connect(f"{pgbouncer.url}?pgbouncer=true", connect_timeout=2)
    try:
        await store.migrate()
        job, _ = await store.create(new_job())
        await pgbouncer.stop()
        with pytest.raises(StoreError):
            await store.get(job.id)
        with pytest.raises(StoreError):
            await store.create(new_job(1))
        await pgbouncer.start()
        assert await store.get(job.id) == job
        assert (await store.create(new_job(2)))[1]
    finally:
        await store.close()
