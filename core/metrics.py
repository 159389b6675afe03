"""Prometheus metrics (`GET /metrics`), one CollectorRegistry per app, nothing global.

Every figure comes from the source of truth at scrape time, so web replicas and workers
need not share a process:

* `blanklogo_jobs{state,source}` and `blanklogo_queue_depth` from the store;
  `blanklogo_arq_queue_depth` from arq; `blanklogo_oldest_queued_age_seconds`;
* `blanklogo_job_duration_seconds{source,status}` (created -> ended) and
  `blanklogo_job_processing_seconds{source,status}` (started -> ended): histograms fed with
  each job that ended since this process started, read from `store.finished_since`
  (each job-end observed once per process);
* `blanklogo_delivery_failures_total{source}`: a counter the worker keeps in Redis
  (`record_delivery_failure`, key `{redis_prefix}:metrics:delivery_failures:{source}`);
* `blanklogo_workers_alive`: live worker heartbeats (see core.health);
* `blanklogo_http_requests_total{route,method,status}` and
  `blanklogo_http_request_duration_seconds{route}`: counted by webhooks.health's middleware;
* `blanklogo_metrics_refresh_failures_total{part}`: parts that could not be read this scrape.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from core.jobs import JobState, Source
from core.settings import Settings

if TYPE_CHECKING:
    from core.deps import Deps

logger = logging.getLogger(__name__)

#: the 0.0.4 text format every Prometheus version scrapes
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
JOB_BUCKETS_S = (5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)
HTTP_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
#: finished jobs are re-read with this overlap, so a row committed late is not missed
FINISHED_OVERLAP = timedelta(minutes=5)
REFRESH_TIMEOUT_S = 3.0


def delivery_failures_key(settings: Settings, source: str) -> str:
    """The Redis counter of failed deliveries for one source."""
    return f"{settings.redis_prefix}:metrics:delivery_failures:{source}"


async def record_delivery_failure(redis: Any, settings: Settings, source: str) -> None:
    """Count one failed delivery attempt (called by the worker's delivery task)."""
    await redis.incr(delivery_failures_key(settings, source))


class _DeliveryFailures(Collector):
    """Exposes the Redis counters read at the last refresh."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "blanklogo_delivery_failures",
            "Failed attempts to deliver a result or reason to the requester",
            labels=["source"],
        )
        for source in Source:
            family.add_metric([source.value], self.values.get(source.value, 0.0))
        yield family


class Metrics:
    """The metrics of one app, in its own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.jobs = Gauge(
            "blanklogo_jobs", "Jobs by state and source", ["state", "source"], registry=r
        )
        self.queue_depth = Gauge(
            "blanklogo_queue_depth", "Jobs waiting in the queue (database)", registry=r
        )
        self.arq_queue_depth = Gauge(
            "blanklogo_arq_queue_depth",
            "arq jobs waiting in Redis (runs and deliveries)",
            registry=r,
        )
        self.oldest_queued_age = Gauge(
            "blanklogo_oldest_queued_age_seconds",
            "How long the oldest queued job waits",
            registry=r,
        )
        self.workers_alive = Gauge(
            "blanklogo_workers_alive", "Workers whose heartbeat is fresh", registry=r
        )
        self.job_duration = Histogram(
            "blanklogo_job_duration_seconds",
            "Seconds from acceptance to the end of a job (completed or failed)",
            ["source", "status"],
            buckets=JOB_BUCKETS_S,
            registry=r,
        )
        self.job_processing = Histogram(
            "blanklogo_job_processing_seconds",
            "Seconds from the last start to the end of a job (completed or failed)",
            ["source", "status"],
            buckets=JOB_BUCKETS_S,
            registry=r,
        )
        self.http_requests = Counter(
            "blanklogo_http_requests",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "blanklogo_http_request_duration_seconds",
            "Seconds to answer an HTTP request",
            ["route"],
            buckets=HTTP_BUCKETS_S,
            registry=r,
        )
        self.refresh_failures = Counter(
            "blanklogo_metrics_refresh_failures",
            "Parts of a scrape that could not be read",
            ["part"],
            registry=r,
        )
        self._delivery = _DeliveryFailures()
        r.register(self._delivery)
        self.started_at = datetime.now(UTC)
        self._read_since: datetime | None = None
        #: (job id, ended at) already observed, so every job end counts once
        self._seen: dict[tuple[str, datetime], None] = {}

    def observe_http(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered HTTP request."""
        self.http_requests.labels(route, method, str(status)).inc()
        self.http_duration.labels(route).observe(seconds)

    async def refresh(self, deps: Deps, now: datetime | None = None) -> None:
        """Read the store, arq and Redis so the next exposition is current; never raises."""
        now = now or datetime.now(UTC)
        parts = {
            "store": self._refresh_store(deps, now),
            "arq": self._refresh_arq(deps),
            "redis": self._refresh_redis(deps),
        }
        results = await asyncio.gather(
            *(asyncio.wait_for(coro, REFRESH_TIMEOUT_S) for coro in parts.values()),
            return_exceptions=True,
        )
        for name, result in zip(parts, results, strict=True):
            if isinstance(result, BaseException):
                logger.warning("metrics: %s not read (%s)", name, result.__class__.__name__)
                self.refresh_failures.labels(name).inc()

    async def _refresh_store(self, deps: Deps, now: datetime) -> None:
        counts = await deps.store.counts_by_state()
        for state in JobState:
            for source in Source:
                self.jobs.labels(state.value, source.value).set(counts.get((state, source), 0))
        self.queue_depth.set(sum(n for (state, _), n in counts.items() if state == JobState.QUEUED))
        queued = await deps.store.list_jobs(states=[JobState.QUEUED], limit=1000)
        oldest = min((job.updated_at for job in queued), default=None)
        self.oldest_queued_age.set(0 if oldest is None else max((now - oldest).total_seconds(), 0))
        since = (self._read_since or self.started_at) - FINISHED_OVERLAP
        for job in await deps.store.finished_since(since):
            if job.completed_at is None or job.completed_at < self.started_at:
                continue
            key = (job.id, job.completed_at)
            if key in self._seen:
                continue
            self._seen[key] = None
            labels = (job.source.value, job.status.value)
            ended = job.completed_at
            self.job_duration.labels(*labels).observe(
                max((ended - job.created_at).total_seconds(), 0)
            )
            if job.started_at is not None:
                seconds = max((ended - job.started_at).total_seconds(), 0)
                self.job_processing.labels(*labels).observe(seconds)
        self._read_since = now
        horizon = now - 4 * FINISHED_OVERLAP
        self._seen = {k: None for k in self._seen if k[1] >= horizon}

    async def _refresh_arq(self, deps: Deps) -> None:
        self.arq_queue_depth.set(await deps.queue.depth())

    async def _refresh_redis(self, deps: Deps) -> None:
        from core.health import read_worker_heartbeats

        self.workers_alive.set(len(await read_worker_heartbeats(deps.redis, deps.settings)))
        keys = [delivery_failures_key(deps.settings, s.value) for s in Source]
        values = await deps.redis.mget(keys)
        self._delivery.values = {
            s.value: float(v) for s, v in zip(Source, values, strict=True) if v is not None
        }

    def exposition(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)
