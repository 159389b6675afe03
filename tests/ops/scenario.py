"""A store holding jobs in every state at chosen times, and the figures a person expects.

Times are relative to NOW (the moment the report is taken):
* queued: 7 (1 slack waiting 30 min, 4 webhook and 2 telegram waiting 1-5 min);
* processing: 4 - `fresh` (started 2 min ago, 40 %), `long` (started 15 min ago, lease
  renewed 10 s ago: stuck by time), `expired` (started 8 min ago, 60 s lease: stuck by its
  lease only), `exhausted` (max_attempts 1, started 20 min ago: stuck and out of attempts);
* in the last hour: 5 completed taking 60, 90, 100, 200, 700 s and 1 failed (CUDA OOM);
* 1-24 h ago: 10 completed taking 30 s each; 30 h ago: 1 completed (outside every window);
* cancelled: 1 (telegram).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from core.jobs import Job, JobState, Source
from tests.ops.conftest import Clock, ended_at, processing_at, queued_at


@dataclass
class Scenario:
    now: datetime
    oldest_queued: Job
    fresh: Job
    long: Job
    expired: Job
    exhausted: Job
    failed: Job
    cancelled: Job
    completed_last_hour: list[Job]


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


async def populate(store: Any, clock: Clock, now: datetime) -> Scenario:
    """Fill `store` as the module docstring says; leaves the clock at `now`."""
    oldest = await queued_at(store, clock, now - minutes(30), source=Source.SLACK)
    for i in range(4):
        await queued_at(store, clock, now - minutes(5 - i), source=Source.WEBHOOK)
    for i in range(2):
        await queued_at(store, clock, now - minutes(2 - i), source=Source.TELEGRAM)

    fresh = await processing_at(
        store,
        clock,
        now - minutes(3),
        now - minutes(2),
        progress=40,
        step="removing",
        beat_at=now - timedelta(seconds=10),
    )
    long = await processing_at(
        store,
        clock,
        now - minutes(20),
        now - minutes(15),
        progress=70,
        step="encoding",
        beat_at=now - timedelta(seconds=10),
        owner="worker-2",
    )
    expired = await processing_at(store, clock, now - minutes(9), now - minutes(8), lease_s=60)
    exhausted = await processing_at(
        store,
        clock,
        now - minutes(25),
        now - minutes(20),
        max_attempts=1,
        beat_at=now - timedelta(seconds=30),
        owner="worker-3",
    )

    completed = []
    reports: list[dict[str, Any] | None] = [
        {"timings": {"cold_start_s": 75.0}},
        {"cold_start_s": 20.0},
        None,
        None,
        None,
    ]
    for duration, report in zip((60, 90, 100, 200, 700), reports, strict=True):
        completed.append(await ended_at(store, clock, now - minutes(40), duration, report=report))
    failed = await ended_at(
        store, clock, now - minutes(45), 30, JobState.FAILED, error="CUDA out of memory"
    )
    for _ in range(10):
        await ended_at(store, clock, now - timedelta(hours=5), 30)
    await ended_at(store, clock, now - timedelta(hours=30), 50)

    cancelled = await queued_at(store, clock, now - timedelta(hours=3), source=Source.TELEGRAM)
    clock.at(now - timedelta(hours=2))
    moved = await store.move(cancelled.id, JobState.CANCELLED, expected=[JobState.QUEUED])
    assert moved is not None

    clock.at(now)
    return Scenario(
        now=now,
        oldest_queued=oldest,
        fresh=fresh,
        long=long,
        expired=expired,
        exhausted=exhausted,
        failed=failed,
        cancelled=moved,
        completed_last_hour=completed,
    )
