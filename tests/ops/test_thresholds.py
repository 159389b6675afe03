"""The runbook's bands, with the gap rule, at every boundary. Pure: no fixtures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.jobs import JobState, Source
from core.ops.stats import percentile, window_stats
from core.ops.thresholds import (
    COMPLETION_TIME_S,
    ERROR_RATE_PCT,
    MODAL_COLD_START_S,
    QUEUE_DEPTH,
    WORKER_MEMORY_PCT,
    Level,
    classify,
    worst,
)
from core.ports import FinishedJob

N, W, C = Level.NORMAL, Level.WARNING, Level.CRITICAL


@pytest.mark.parametrize(
    ("metric", "value", "level"),
    [
        # queue depth: runbook 0-5 / 10-20 / >50; the gaps 6-9 and 21-50 are Warning
        (QUEUE_DEPTH, 0, N),
        (QUEUE_DEPTH, 5, N),
        (QUEUE_DEPTH, 6, W),
        (QUEUE_DEPTH, 9, W),
        (QUEUE_DEPTH, 10, W),
        (QUEUE_DEPTH, 20, W),
        (QUEUE_DEPTH, 21, W),
        (QUEUE_DEPTH, 50, W),
        (QUEUE_DEPTH, 51, C),
        # completion time (s): <2 min / 2-5 min / >10 min; 5-10 min is Warning
        (COMPLETION_TIME_S, 119.9, N),
        (COMPLETION_TIME_S, 120, W),
        (COMPLETION_TIME_S, 300, W),
        (COMPLETION_TIME_S, 450, W),
        (COMPLETION_TIME_S, 600, W),
        (COMPLETION_TIME_S, 600.1, C),
        # Modal cold start (s): <60 / 60-120 / >180; 120-180 is Warning
        (MODAL_COLD_START_S, 59.9, N),
        (MODAL_COLD_START_S, 60, W),
        (MODAL_COLD_START_S, 150, W),
        (MODAL_COLD_START_S, 180, W),
        (MODAL_COLD_START_S, 180.5, C),
        # error rate (%): <1 / 1-5 / >10; 5-10 is Warning
        (ERROR_RATE_PCT, 0, N),
        (ERROR_RATE_PCT, 0.99, N),
        (ERROR_RATE_PCT, 1, W),
        (ERROR_RATE_PCT, 5, W),
        (ERROR_RATE_PCT, 7.5, W),
        (ERROR_RATE_PCT, 10, W),
        (ERROR_RATE_PCT, 10.01, C),
        # worker memory (%): <70 / 70-85 / >90; 85-90 is Warning
        (WORKER_MEMORY_PCT, 69.9, N),
        (WORKER_MEMORY_PCT, 70, W),
        (WORKER_MEMORY_PCT, 87, W),
        (WORKER_MEMORY_PCT, 90, W),
        (WORKER_MEMORY_PCT, 90.1, C),
    ],
)
def test_each_value_gets_the_level_of_its_band(metric: str, value: float, level: Level) -> None:
    assert classify(metric, value) is level


def test_no_value_has_no_level() -> None:
    assert classify(ERROR_RATE_PCT, None) is None


def test_worst_level_wins() -> None:
    assert worst([N, None, C, W]) is C
    assert worst([None]) is None


def test_percentiles_use_the_nearest_rank() -> None:
    values = [60, 90, 100, 200, 700]
    assert percentile(values, 50) == 100
    assert percentile(values, 95) == 700
    assert percentile(range(1, 21), 95) == 19
    assert percentile([42], 50) == 42
    assert percentile([], 50) is None


def test_window_counts_only_jobs_that_ended_inside_it() -> None:
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)

    def ended(minutes_ago: float, took_s: float, status: JobState) -> FinishedJob:
        end = now - timedelta(minutes=minutes_ago)
        return FinishedJob("x", Source.SLACK, status, end - timedelta(seconds=took_s), None, end)

    jobs = [
        ended(10, 30, JobState.COMPLETED),
        ended(20, 90, JobState.COMPLETED),
        ended(30, 5, JobState.FAILED),
        ended(61, 999, JobState.COMPLETED),
    ]
    hour = window_stats(jobs, now, timedelta(hours=1), "1h")
    assert (hour.completed, hour.failed) == (2, 1)
    assert hour.p50_s == 30 and hour.p95_s == 90
    assert hour.error_rate_pct == pytest.approx(100 / 3)
    assert hour.error_rate_level is C
    empty = window_stats([], now, timedelta(hours=1), "1h")
    assert empty.error_rate_pct is None and empty.p50_level is None
