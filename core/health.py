"""The health checks behind `/health` and `GET /health`, and the worker heartbeats they read.

Each check answers `{"status": "ok"|"degraded"|"down", "latency_ms": ..., ...facts}` within
its own timeout, so a dead Redis or database names itself instead of hanging the reply.

Overall status (`overall_status`):
* **down** (HTTP 503) when the database or Redis is down: nothing can be accepted or
  queued;
* **degraded** (HTTP 200) when anything else is not ok: storage down or slow, the engine
  degraded or down, no worker alive, a worker's memory Critical, the queue depth Critical,
  or Redis / the database answering slowly;
* **ok** otherwise.

Worker heartbeats: core.worker keeps a presence key per worker process,
`{redis_prefix}:workers:{owner}`, value JSON `{"owner", "host", "pid", "started_at",
"last_seen" (ISO 8601), "running", "queue"}` with a TTL (a dead worker's key vanishes);
`memory_pct` / `rss_bytes` (from `memory_usage()`) are read when present, for the runbook's
worker-memory row. `publish_worker_heartbeat` writes that same shape.
arq's own key `{queue_name}:health-check` (arq's default `health_check_key`) is shown too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import core
from core.jobs import Job, JobState
from core.ops.reports import QueueReport, build_queue_report, cold_start_of
from core.ops.thresholds import WORKER_MEMORY_PCT, Level, classify
from core.ports import FinishedJob
from core.settings import Settings

if TYPE_CHECKING:
    from core.deps import Deps

logger = logging.getLogger(__name__)

#: seconds each check may take before it counts as down
CHECK_TIMEOUT_S = 3.0
ENGINE_TIMEOUT_S = 10.0
#: above these latencies a check that answered is "degraded" (slow)
SLOW_AFTER_S = {"redis": 0.5, "database": 1.0, "storage": 2.0}
#: a worker heartbeat expires this long after it was written (worker writes every ~10 s)
HEARTBEAT_TTL_S = 30
#: at most this many queued rows are read to find the one waiting longest
QUEUED_SCAN_LIMIT = 1000
PROCESSING_SCAN_LIMIT = 200
#: recent completed jobs whose engine report is read for the Modal cold start
COLD_START_SAMPLE = 20
#: latest failed jobs whose reason `/queue` shows
RECENT_FAILURES = 5


def worker_heartbeat_key(settings: Settings, worker_id: str) -> str:
    """The Redis key of one worker's heartbeat."""
    return f"{settings.redis_prefix}:workers:{worker_id}"


def arq_health_check_key(settings: Settings) -> str:
    """arq's health-check key for our queue (arq's default: queue name + ':health-check')."""
    return f"{settings.queue_name}:health-check"


def memory_usage() -> dict[str, float | int | None]:
    """This process's memory: rss_bytes and memory_pct of the container (cgroup) or machine."""
    rss = _read_status_kb("VmRSS")
    used, limit = _cgroup_memory()
    if used is None or limit is None:
        used = None if rss is None else rss
        limit = _read_meminfo_total()
    pct = None if used is None or not limit else round(100.0 * used / limit, 1)
    return {"rss_bytes": rss, "memory_pct": pct}


def _read_status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _read_meminfo_total() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_memory() -> tuple[int | None, int | None]:
    """(current, limit) of the cgroup v2 this process runs in, when it has a limit."""
    try:
        limit_text = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        current = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
    except (OSError, ValueError):
        return None, None
    if limit_text == "max":
        return None, None
    return current, int(limit_text)


async def publish_worker_heartbeat(
    redis: Any,
    settings: Settings,
    worker_id: str,
    *,
    jobs_running: int,
    started_at: float,
    ttl_s: int = HEARTBEAT_TTL_S,
) -> None:
    """Record that this worker is alive (call every ~TTL/3 seconds from the worker)."""
    value = {
        "owner": worker_id,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started_at": datetime.fromtimestamp(started_at, UTC).isoformat(),
        "last_seen": datetime.now(UTC).isoformat(),
        "running": jobs_running,
        "queue": settings.queue_name,
        **memory_usage(),
    }
    await redis.set(worker_heartbeat_key(settings, worker_id), json.dumps(value), ex=ttl_s)


async def remove_worker_heartbeat(redis: Any, settings: Settings, worker_id: str) -> None:
    """Forget a worker that stops cleanly."""
    await redis.delete(worker_heartbeat_key(settings, worker_id))


async def read_worker_heartbeats(redis: Any, settings: Settings) -> list[dict[str, Any]]:
    """Every live worker heartbeat (expired ones are gone from Redis)."""
    prefix = "".join(f"\\{c}" if c in "[]*?\\" else c for c in settings.redis_prefix)
    pattern = f"{prefix}:workers:*"
    keys = [key async for key in redis.scan_iter(match=pattern, count=200)]
    if not keys:
        return []
    beats = []
    for raw in await redis.mget(keys):
        if raw is None:
            continue
        try:
            value = json.loads(raw)
        except (ValueError, TypeError):
            continue
        if isinstance(value, dict):
            beats.append(_beat_facts(value))
    return beats


def _beat_facts(raw: dict[str, Any]) -> dict[str, Any]:
    """One heartbeat in the names this module uses (worker_id, seen_at epoch, jobs_running)."""
    seen = raw.get("seen_at")
    if not isinstance(seen, int | float) and isinstance(raw.get("last_seen"), str):
        try:
            seen = datetime.fromisoformat(raw["last_seen"]).timestamp()
        except ValueError:
            seen = None
    memory = raw.get("memory_pct")
    return {
        "worker_id": raw.get("worker_id") or raw.get("owner"),
        "host": raw.get("host"),
        "pid": raw.get("pid"),
        "jobs_running": raw.get("jobs_running", raw.get("running")),
        "seen_at": seen if isinstance(seen, int | float) else None,
        "memory_pct": memory if isinstance(memory, int | float) else None,
    }


async def _timed(
    name: str, check: Callable[[], Awaitable[dict[str, Any]]], timeout_s: float
) -> dict[str, Any]:
    """Run one check under a timeout; any failure becomes a "down" answer naming the cause."""
    started = time.perf_counter()
    try:
        result = await asyncio.wait_for(check(), timeout_s)
    except TimeoutError:
        result = {"status": "down", "error": f"{name} did not answer within {timeout_s:g} s"}
    except Exception as exc:  # noqa: BLE001 - a health check reports every failure
        logger.warning("health check %s failed: %s", name, exc.__class__.__name__)
        result = {"status": "down", "error": f"{name} unreachable: {_describe(exc)}"}
    elapsed = time.perf_counter() - started
    result.setdefault("latency_ms", round(elapsed * 1000, 1))
    slow = SLOW_AFTER_S.get(name)
    if result["status"] == "ok" and slow is not None and elapsed > slow:
        result["status"] = "degraded"
        result["error"] = f"{name} slow: {elapsed * 1000:.0f} ms (over {slow * 1000:.0f} ms)"
    return result


def _describe(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


async def check_redis(deps: Deps) -> dict[str, Any]:
    """PING through the queue, then read arq's queue depth."""
    await deps.queue.ping()
    return {"status": "ok", "arq_depth": await deps.queue.depth()}


async def check_database(deps: Deps) -> dict[str, Any]:
    """A real query through the store."""
    await deps.store.ping()
    return {"status": "ok"}


async def check_storage(deps: Deps) -> dict[str, Any]:
    """Write, read back and delete a tiny object."""
    key = f"health/{uuid.uuid4().hex}.txt"
    payload = f"blanklogo health {time.time()}".encode()

    async def chunks() -> AsyncIterator[bytes]:
        yield payload

    await deps.storage.put_stream(key, chunks(), content_type="text/plain", max_bytes=1024)
    try:
        with tempfile.TemporaryDirectory(prefix="blanklogo-health-") as tmp:
            dest = Path(tmp) / "probe.txt"
            await deps.storage.get_file(key, dest)
            if dest.read_bytes() != payload:
                return {"status": "down", "error": "storage returned different bytes"}
    finally:
        await deps.storage.delete(key)
    return {"status": "ok", "backend": deps.settings.storage_backend}


async def check_engine(deps: Deps) -> dict[str, Any]:
    """The engine's own health (local: device, torch, ffmpeg; Modal: its health endpoint)."""
    report = dict(await deps.engine.health())
    status = str(report.pop("status", "degraded"))
    if status not in ("ok", "degraded", "down"):
        report["detail"] = f"engine said {status!r}"
        status = "degraded"
    return {"status": status, **report}


async def check_workers(deps: Deps, now: datetime | None = None) -> dict[str, Any]:
    """Live worker heartbeats (and arq's health-check line)."""
    now_s = (now or datetime.now(UTC)).timestamp()
    beats = await read_worker_heartbeats(deps.redis, deps.settings)
    arq_line = await deps.redis.get(arq_health_check_key(deps.settings))
    if isinstance(arq_line, bytes):
        arq_line = arq_line.decode("utf-8", "replace")
    memories = [float(b["memory_pct"]) for b in beats if b.get("memory_pct") is not None]
    seen = [float(b["seen_at"]) for b in beats if b.get("seen_at") is not None]
    result: dict[str, Any] = {
        "status": "ok",
        "alive": len(beats),
        "last_seen_s": round(now_s - max(seen), 1) if seen else None,
        "max_memory_pct": max(memories) if memories else None,
        "memory_level": None,
        "arq_health": arq_line,
        "workers": [
            {k: b.get(k) for k in ("worker_id", "host", "jobs_running", "memory_pct", "seen_at")}
            for b in beats
        ],
    }
    level = classify(WORKER_MEMORY_PCT, result["max_memory_pct"])
    result["memory_level"] = None if level is None else level.value
    if not beats:
        result["status"] = "degraded"
        result["error"] = (
            f"no worker heartbeat in the last {HEARTBEAT_TTL_S} s: queued jobs will wait"
        )
    elif level == Level.CRITICAL:
        result["status"] = "degraded"
        result["error"] = f"a worker uses {result['max_memory_pct']:.0f} % of its memory"
    return result


async def gather_queue_report(
    deps: Deps, now: datetime | None = None, *, details: bool = True
) -> QueueReport:
    """Read every `/queue` figure from the store (the source of truth), arq and the workers.

    `details=False` skips what needs one query per job (recent Modal cold starts, the
    latest failures' reasons), which the frequently polled GET /health does without.
    """
    now = now or datetime.now(UTC)
    store = deps.store
    counts = await store.counts_by_state()
    queued = await store.list_jobs(states=[JobState.QUEUED], limit=QUEUED_SCAN_LIMIT)
    processing = await store.list_jobs(states=[JobState.PROCESSING], limit=PROCESSING_SCAN_LIMIT)
    finished = await store.finished_since(now - timedelta(hours=24))
    notes: list[str] = []
    if len(queued) >= QUEUED_SCAN_LIMIT:
        notes.append(f"oldest waiting is taken from the first {QUEUED_SCAN_LIMIT} queued jobs")
    arq_depth: int | None = None
    try:
        arq_depth = await asyncio.wait_for(deps.queue.depth(), CHECK_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - the report still stands without arq
        notes.append(f"arq queue depth unavailable ({_describe(exc)})")
    memory: float | None = None
    try:
        beats = await asyncio.wait_for(
            read_worker_heartbeats(deps.redis, deps.settings), CHECK_TIMEOUT_S
        )
        memories = [float(b["memory_pct"]) for b in beats if b.get("memory_pct") is not None]
        memory = max(memories) if memories else None
    except Exception as exc:  # noqa: BLE001
        notes.append(f"worker heartbeats unavailable ({_describe(exc)})")
    cold_starts: list[float] = []
    failures: list[Job] = []
    if details:
        cold_starts = await _recent_cold_starts(deps, finished, now)
        failures = await _recent_failures(deps, finished, now)
    return build_queue_report(
        now=now,
        counts=counts,
        queued=queued,
        processing=processing,
        finished=finished,
        arq_depth=arq_depth,
        cold_start_s=max(cold_starts) if cold_starts else None,
        recent_failures=failures,
        worker_memory_pct=memory,
        notes=notes,
    )


def _latest(finished: list[FinishedJob], status: JobState, n: int, now: datetime) -> list[str]:
    ended = [f for f in finished if f.status == status and f.completed_at is not None]
    ended.sort(key=lambda f: f.completed_at or now, reverse=True)
    return [f.id for f in ended[:n]]


async def _recent_failures(deps: Deps, finished: list[FinishedJob], now: datetime) -> list[Job]:
    """The latest failed jobs, newest first (their error says why: "CUDA out of memory"...)."""
    jobs = [
        await deps.store.get(job_id)
        for job_id in _latest(finished, JobState.FAILED, RECENT_FAILURES, now)
    ]
    return [job for job in jobs if job is not None]


async def _recent_cold_starts(
    deps: Deps, finished: list[FinishedJob], now: datetime
) -> list[float]:
    """Modal cold starts reported by the latest completed jobs (none for the local engine)."""
    found = []
    for job_id in _latest(finished, JobState.COMPLETED, COLD_START_SAMPLE, now):
        job = await deps.store.get(job_id)
        value = None if job is None else cold_start_of(job.report)
        if value is not None:
            found.append(value)
    return found


async def check_queue(deps: Deps, now: datetime | None = None) -> dict[str, Any]:
    """The queue figures (GET /health `services.queue`); degraded at a Critical depth."""
    report = await gather_queue_report(deps, now, details=False)
    status = "degraded" if report.depth_level == Level.CRITICAL else "ok"
    result: dict[str, Any] = {"status": status, **report.to_dict()}
    if status != "ok":
        result["error"] = f"{report.depth} jobs queued (Critical over 50)"
    return result


def overall_status(services: dict[str, dict[str, Any]]) -> str:
    """down when the database or Redis is down; degraded when anything is not ok; else ok."""
    if any(services.get(name, {}).get("status") == "down" for name in ("database", "redis")):
        return "down"
    if any(check.get("status") != "ok" for check in services.values()):
        return "degraded"
    return "ok"


async def check_health(
    deps: Deps,
    *,
    timeout_s: float = CHECK_TIMEOUT_S,
    engine_timeout_s: float = ENGINE_TIMEOUT_S,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Run every check at once and return the GET /health body."""
    names = ("queue", "redis", "database", "storage", "gpu", "workers")
    checks: list[Awaitable[dict[str, Any]]] = [
        _timed("queue", lambda: check_queue(deps, now), timeout_s * 2),
        _timed("redis", lambda: check_redis(deps), timeout_s),
        _timed("database", lambda: check_database(deps), timeout_s),
        _timed("storage", lambda: check_storage(deps), timeout_s),
        _timed("gpu", lambda: check_engine(deps), engine_timeout_s),
        _timed("workers", lambda: check_workers(deps, now), timeout_s),
    ]
    services = dict(zip(names, await asyncio.gather(*checks), strict=True))
    return {
        "status": overall_status(services),
        "version": core.__version__,
        "checked_at": (now or datetime.now(UTC)).isoformat(),
        "services": services,
    }
