"""GET /health and GET /metrics through the real aiohttp app, with real Redis and stores."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from arq.connections import ArqRedis

from core.deps import Deps, build
from core.health import check_health, publish_worker_heartbeat, worker_heartbeat_key
from core.jobs import JobState, Source
from core.metrics import record_delivery_failure
from core.settings import Settings
from tests.conftest import free_port
from tests.ops.conftest import Clock, StandInEngine, ended_at, queued_at
from webhooks.server import build_app

pytestmark = [pytest.mark.redis]

SERVICES = {"queue", "redis", "database", "storage", "gpu", "workers"}


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """SQLite here (the queue figures run on both databases in test_queue_report);
    PostgreSQL in the unreachable-database test below."""
    return sqlite_url


async def beat(deps: Deps, worker_id: str = "w1") -> None:
    await publish_worker_heartbeat(
        deps.redis, deps.settings, worker_id, jobs_running=0, started_at=0.0
    )


async def test_health_is_ok_when_every_part_answers(
    deps: Deps, aiohttp_client: Callable[..., Any], store: Any, clock: Clock, now: datetime
) -> None:
    await queued_at(store, clock, now - timedelta(minutes=4))
    await beat(deps)
    client = await aiohttp_client(build_app(deps))
    resp = await client.get("/health")
    body = await resp.json()

    assert resp.status == 200
    assert body["status"] == "ok", body
    assert body["version"] == "0.1.0"
    assert set(body["services"]) == SERVICES
    queue = body["services"]["queue"]
    assert (queue["depth"], queue["in_progress"]) == (1, 0)
    assert queue["oldest_queued_age_s"] >= 240
    assert queue["by_state"]["queued"] == 1
    for name in ("redis", "database", "storage", "workers"):
        assert body["services"][name]["status"] == "ok"
        assert body["services"][name]["latency_ms"] >= 0
    assert body["services"]["redis"]["arq_depth"] == 0
    assert body["services"]["gpu"]["device"] == "cpu"
    workers = body["services"]["workers"]
    assert workers["alive"] == 1
    assert workers["workers"][0]["worker_id"] == "w1"
    assert workers["max_memory_pct"] is not None
    # storage was written, read back and cleaned: nothing is left behind
    assert not any((deps.settings.storage_dir / "health").glob("*"))


async def test_health_is_degraded_without_workers_or_with_a_sick_engine(
    deps: Deps, aiohttp_client: Callable[..., Any], engine: StandInEngine
) -> None:
    engine.answer = {"status": "down", "detail": "torch not installed"}
    client = await aiohttp_client(build_app(deps))
    resp = await client.get("/health")
    body = await resp.json()
    assert resp.status == 200
    assert body["status"] == "degraded"
    assert body["services"]["gpu"]["status"] == "down"
    assert body["services"]["workers"]["status"] == "degraded"
    assert "no worker heartbeat" in body["services"]["workers"]["error"]


async def test_a_worker_using_critical_memory_degrades_health(deps: Deps) -> None:
    await deps.redis.set(
        worker_heartbeat_key(deps.settings, "big"),
        json.dumps({"worker_id": "big", "seen_at": 0, "memory_pct": 95.0}),
        ex=30,
    )
    body = await check_health(deps)
    assert body["services"]["workers"]["status"] == "degraded"
    assert body["services"]["workers"]["memory_level"] == "Critical"


async def test_a_hanging_engine_check_times_out_and_names_itself(
    deps: Deps, engine: StandInEngine
) -> None:
    await beat(deps)
    engine.delay_s = 5
    body = await check_health(deps, engine_timeout_s=0.2)
    assert body["status"] == "degraded"
    assert body["services"]["gpu"] == {
        "status": "down",
        "error": "gpu did not answer within 0.2 s",
        "latency_ms": body["services"]["gpu"]["latency_ms"],
    }


async def test_slow_storage_is_degraded(deps: Deps, monkeypatch: pytest.MonkeyPatch) -> None:
    await beat(deps)
    monkeypatch.setitem(__import__("core.health").health.SLOW_AFTER_S, "storage", 0.0)
    body = await check_health(deps)
    assert body["status"] == "degraded"
    assert body["services"]["storage"]["error"].startswith("storage slow:")


async def test_health_is_down_with_503_when_redis_is_unreachable(
    settings: Settings, store: Any, engine: StandInEngine, aiohttp_client: Callable[..., Any]
) -> None:
    dead = ArqRedis.from_url(f"redis://127.0.0.1:{free_port()}", socket_connect_timeout=1)
    deps = await build(settings, store=store, engine=engine, redis=dead, notifiers={})
    try:
        client = await aiohttp_client(build_app(deps))
        resp = await client.get("/health")
        body = await resp.json()
    finally:
        await dead.aclose()
        await deps.close()
    assert resp.status == 503
    assert body["status"] == "down"
    assert body["services"]["redis"]["status"] == "down"
    assert body["services"]["redis"]["error"].startswith("redis unreachable: QueueError")
    assert body["services"]["workers"]["status"] == "down"
    assert body["services"]["database"]["status"] == "ok"
    # the queue figures still come from the database
    assert body["services"]["queue"]["depth"] == 0
    assert any("arq queue depth unavailable" in n for n in body["services"]["queue"]["notes"])


@pytest.mark.postgres
async def test_health_is_down_with_503_when_the_database_is_unreachable(
    pg_url: str,
    settings: Settings,
    clock: Clock,
    engine: StandInEngine,
    aiohttp_client: Callable[..., Any],
) -> None:
    import asyncpg

    from tests.conftest import PG_ADMIN_URL
    from tests.ops.conftest import open_store

    store = await open_store(pg_url, clock)
    deps = await build(settings, store=store, engine=engine, notifiers={})
    try:
        admin = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await admin.execute(f'DROP DATABASE "{pg_url.rsplit("/", 1)[1]}" WITH (FORCE)')
        finally:
            await admin.close()
        client = await aiohttp_client(build_app(deps))
        resp = await client.get("/health")
        body = await resp.json()
    finally:
        await deps.close()
        await store.close()
    assert resp.status == 503
    assert body["status"] == "down"
    assert body["services"]["database"]["status"] == "down"
    assert body["services"]["database"]["error"].startswith("database unreachable")
    assert body["services"]["redis"]["status"] == "ok"


async def test_metrics_expose_jobs_durations_depth_deliveries_and_http_requests(
    deps: Deps, aiohttp_client: Callable[..., Any], store: Any, clock: Clock, now: datetime
) -> None:
    client = await aiohttp_client(build_app(deps))
    # jobs that end after the app started are observed once each
    await queued_at(store, clock, now, source=Source.SLACK)
    await queued_at(store, clock, now, source=Source.SLACK)
    await ended_at(store, clock, now + timedelta(seconds=5), 45)
    await ended_at(store, clock, now + timedelta(seconds=5), 400, JobState.FAILED)
    await record_delivery_failure(deps.redis, deps.settings, "telegram")
    await record_delivery_failure(deps.redis, deps.settings, "telegram")
    await beat(deps)
    assert (await client.get("/health")).status == 200
    assert (await client.get("/nowhere")).status == 404
    unknown = await client.get("/v1/jobs/0123456789abcdef")
    assert unknown.status in (401, 404)

    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = await resp.text()
    lines = set(text.splitlines())
    assert 'blanklogo_jobs{source="slack",state="queued"} 2.0' in lines
    assert 'blanklogo_jobs{source="webhook",state="completed"} 1.0' in lines
    assert 'blanklogo_jobs{source="webhook",state="failed"} 1.0' in lines
    assert "blanklogo_queue_depth 2.0" in lines
    assert "blanklogo_workers_alive 1.0" in lines
    assert (
        'blanklogo_job_duration_seconds_bucket{le="60.0",source="webhook",status="completed"} 1.0'
        in lines
    )
    assert 'blanklogo_job_duration_seconds_count{source="webhook",status="failed"} 1.0' in lines
    assert (
        'blanklogo_job_duration_seconds_bucket{le="300.0",source="webhook",status="failed"} 0.0'
        in lines
    )
    assert 'blanklogo_delivery_failures_total{source="telegram"} 2.0' in lines
    assert 'blanklogo_delivery_failures_total{source="slack"} 0.0' in lines
    assert 'blanklogo_http_requests_total{method="GET",route="/health",status="200"} 1.0' in lines
    assert 'blanklogo_http_requests_total{method="GET",route="unmatched",status="404"} 1.0' in lines
    # the route pattern, never the raw path with its id
    assert (
        f'blanklogo_http_requests_total{{method="GET",route="/v1/jobs/{{id}}",status="{unknown.status}"}} 1.0'
        in lines
    )
    assert "0123456789abcdef" not in text

    # a second scrape observes nothing twice
    text = await (await client.get("/metrics")).text()
    assert 'blanklogo_job_duration_seconds_count{source="webhook",status="completed"} 1.0' in text
    assert 'blanklogo_http_requests_total{method="GET",route="/metrics",status="200"} 1.0' in text


async def test_each_app_has_its_own_registry(
    deps: Deps, aiohttp_client: Callable[..., Any]
) -> None:
    first = await aiohttp_client(build_app(deps))
    second = await aiohttp_client(build_app(deps))
    await first.get("/health")
    text = await (await second.get("/metrics")).text()
    assert 'route="/health"' not in text


async def test_health_reads_live_worker_heartbeats(deps: Deps) -> None:
    await publish_worker_heartbeat(
        deps.redis, deps.settings, "host-1:123:abc", jobs_running=2, started_at=1.0e9
    )
    key = worker_heartbeat_key(deps.settings, "host-1:123:abc")
    assert 0 < await deps.redis.ttl(key) <= 30
    body = await check_health(deps)
    workers = body["services"]["workers"]
    assert workers["status"] == "ok"
    assert workers["alive"] == 1
    assert 0 <= workers["last_seen_s"] < 5
    (beat_facts,) = workers["workers"]
    assert beat_facts["worker_id"] == "host-1:123:abc"
    assert beat_facts["jobs_running"] == 2
    assert 0 < beat_facts["memory_pct"] < 100


async def test_health_shows_arqs_own_health_check_line(deps: Deps) -> None:
    from core.health import arq_health_check_key

    line = "Dec-04 20:40:00 j_complete=3 j_failed=1 j_retried=0 j_ongoing=1 queued=2"
    await deps.redis.set(arq_health_check_key(deps.settings), line, ex=31)
    assert arq_health_check_key(deps.settings) == f"{deps.settings.queue_name}:health-check"
    body = await check_health(deps)
    assert body["services"]["workers"]["arq_health"] == line


async def test_setup_alone_counts_requests_on_an_app_built_without_the_middleware(
    deps: Deps, aiohttp_client: Callable[..., Any]
) -> None:
    from aiohttp import web

    from webhooks.health import setup

    app = web.Application()
    setup(app, deps)
    client = await aiohttp_client(app)
    await client.get("/health")
    await client.get("/health")
    text = await (await client.get("/metrics")).text()
    assert 'blanklogo_http_requests_total{method="GET",route="/health",status="200"} 2.0' in text
