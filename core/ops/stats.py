"""Queue statistics from plain job facts: percentiles, error rate, windows. Pure: no I/O.

* completion time = created_at -> completed_at of jobs that ended `completed` (what the
  person waited, queue time included); failed jobs do not count towards it;
* error rate = failed / (completed + failed) among jobs that ended in the window
  (cancelled jobs are neither: an operator or the requester chose to stop them);
* percentiles use the nearest-rank method (p95 of 20 values is the 19th smallest).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.jobs import JobState
from core.ops.thresholds import COMPLETION_TIME_S, ERROR_RATE_PCT, Level, classify
from core.ports import FinishedJob


def percentile(values: Iterable[float], pct: float) -> float | None:
    """Nearest-rank percentile (0 < pct <= 100) of `values`; None when there are none."""
    ordered = sorted(values)
    if not ordered:
        return None
    if not 0 < pct <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {pct}")
    rank = math.ceil(pct / 100 * len(ordered))
    return ordered[max(rank, 1) - 1]


@dataclass(frozen=True)
class WindowStats:
    """Completion time and error rate over the jobs that ended in one time window."""

    label: str
    window_s: int
    completed: int
    failed: int
    p50_s: float | None
    p95_s: float | None

    @property
    def finished(self) -> int:
        return self.completed + self.failed

    @property
    def error_rate_pct(self) -> float | None:
        if not self.finished:
            return None
        return 100.0 * self.failed / self.finished

    @property
    def p50_level(self) -> Level | None:
        return classify(COMPLETION_TIME_S, self.p50_s)

    @property
    def p95_level(self) -> Level | None:
        return classify(COMPLETION_TIME_S, self.p95_s)

    @property
    def error_rate_level(self) -> Level | None:
        return classify(ERROR_RATE_PCT, self.error_rate_pct)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready figures with their levels."""
        rate = self.error_rate_pct
        return {
            "window": self.label,
            "window_s": self.window_s,
            "completed": self.completed,
            "failed": self.failed,
            "completion_p50_s": _round(self.p50_s),
            "completion_p50_level": _level(self.p50_level),
            "completion_p95_s": _round(self.p95_s),
            "completion_p95_level": _level(self.p95_level),
            "error_rate_pct": _round(rate),
            "error_rate_level": _level(self.error_rate_level),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _level(level: Level | None) -> str | None:
    return None if level is None else level.value


def window_stats(
    finished: Iterable[FinishedJob], now: datetime, window: timedelta, label: str
) -> WindowStats:
    """Figures for jobs that reached completed/failed in (now - window, now]."""
    since = now - window
    durations: list[float] = []
    completed = failed = 0
    for job in finished:
        if job.completed_at is None or job.completed_at < since or job.completed_at > now:
            continue
        if job.status == JobState.COMPLETED:
            completed += 1
            durations.append(max((job.completed_at - job.created_at).total_seconds(), 0.0))
        elif job.status == JobState.FAILED:
            failed += 1
    return WindowStats(
        label=label,
        window_s=int(window.total_seconds()),
        completed=completed,
        failed=failed,
        p50_s=percentile(durations, 50),
        p95_s=percentile(durations, 95),
    )
