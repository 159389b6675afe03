"""What the ops commands found, as plain data built from plain facts. Pure: no I/O.

Every report has `to_dict()` (JSON-ready; what `OpsReply.data` and `GET /health` carry)
and is turned into words by `core.ops.render`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from core.jobs import Job, JobState, Source
from core.ops.stats import WindowStats, window_stats
from core.ops.thresholds import (
    MODAL_COLD_START_S,
    QUEUE_DEPTH,
    WORKER_MEMORY_PCT,
    Level,
    classify,
)
from core.ports import FinishedJob

WINDOWS: tuple[tuple[str, timedelta], ...] = (
    ("1h", timedelta(hours=1)),
    ("24h", timedelta(hours=24)),
)


def _age_s(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else max((now - then).total_seconds(), 0.0)


def _lv(level: Level | None) -> str | None:
    return None if level is None else level.value


@dataclass(frozen=True)
class ProcessingRow:
    """One job being worked on now."""

    job_id: str
    source: str
    age_s: float | None
    progress: int
    step: str | None
    attempts: int
    max_attempts: int
    owner: str | None
    lease_left_s: float | None

    @classmethod
    def of(cls, job: Job, now: datetime) -> ProcessingRow:
        """The row for a processing job as seen at `now`."""
        lease_left = None
        if job.lease_expires_at is not None:
            lease_left = (job.lease_expires_at - now).total_seconds()
        return cls(
            job_id=job.id,
            source=str(job.source),
            age_s=_age_s(now, job.started_at or job.updated_at),
            progress=job.progress,
            step=job.current_step,
            attempts=job.attempts,
            max_attempts=job.max_attempts,
            owner=job.lease_owner,
            lease_left_s=lease_left,
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.job_id,
            "source": self.source,
            "age_s": None if self.age_s is None else round(self.age_s, 1),
            "progress": self.progress,
            "step": self.step,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "owner": self.owner,
            "lease_left_s": None if self.lease_left_s is None else round(self.lease_left_s, 1),
        }


@dataclass(frozen=True)
class RecentFailure:
    """One job that failed lately, with the reason it gave (e.g. "CUDA out of memory")."""

    job_id: str
    source: str
    ended_ago_s: float
    error: str

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.job_id,
            "source": self.source,
            "ended_ago_s": round(self.ended_ago_s, 1),
            "error": self.error,
        }


@dataclass(frozen=True)
class QueueReport:
    """The `/queue` figures, each with its runbook level."""

    generated_at: datetime
    depth: int
    arq_depth: int | None
    by_state: dict[str, int]
    by_source: dict[str, dict[str, int]]
    oldest_queued_id: str | None
    oldest_queued_age_s: float | None
    processing: list[ProcessingRow]
    windows: list[WindowStats]
    cold_start_s: float | None = None
    worker_memory_pct: float | None = None
    recent_failures: list[RecentFailure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def depth_level(self) -> Level:
        level = classify(QUEUE_DEPTH, self.depth)
        assert level is not None
        return level

    @property
    def cold_start_level(self) -> Level | None:
        return classify(MODAL_COLD_START_S, self.cold_start_s)

    @property
    def worker_memory_level(self) -> Level | None:
        return classify(WORKER_MEMORY_PCT, self.worker_memory_pct)

    @property
    def in_progress(self) -> int:
        return self.by_state.get(JobState.PROCESSING.value, 0)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready; also the `services.queue` block of GET /health."""
        return {
            "depth": self.depth,
            "depth_level": self.depth_level.value,
            "arq_depth": self.arq_depth,
            "in_progress": self.in_progress,
            "oldest_queued_age_s": (
                None if self.oldest_queued_age_s is None else round(self.oldest_queued_age_s, 1)
            ),
            "oldest_queued_id": self.oldest_queued_id,
            "by_state": dict(self.by_state),
            "by_source": {k: dict(v) for k, v in self.by_source.items()},
            "processing": [row.to_dict() for row in self.processing],
            "windows": {w.label: w.to_dict() for w in self.windows},
            "modal_cold_start_s": self.cold_start_s,
            "modal_cold_start_level": _lv(self.cold_start_level),
            "worker_memory_pct": self.worker_memory_pct,
            "worker_memory_level": _lv(self.worker_memory_level),
            "recent_failures": [f.to_dict() for f in self.recent_failures],
            "notes": list(self.notes),
        }


def build_queue_report(
    *,
    now: datetime,
    counts: Mapping[tuple[JobState, Source], int],
    queued: Iterable[Job],
    processing: Iterable[Job],
    finished: Iterable[FinishedJob],
    arq_depth: int | None = None,
    cold_start_s: float | None = None,
    worker_memory_pct: float | None = None,
    recent_failures: Iterable[Job] = (),
    notes: Iterable[str] = (),
) -> QueueReport:
    """Assemble the `/queue` report from what the store, arq, the engine and the workers said.

    A queued job waits since it last entered `queued` (updated_at: queued rows are not
    touched otherwise), so a job an operator retried today is not "a week old".
    """
    by_state = {state.value: 0 for state in JobState}
    by_source: dict[str, dict[str, int]] = {}
    for (state, source), n in counts.items():
        by_state[JobState(state).value] = by_state.get(JobState(state).value, 0) + n
        per = by_source.setdefault(Source(source).value, {})
        per[JobState(state).value] = per.get(JobState(state).value, 0) + n
    by_source = {
        src: {st.value: per[st.value] for st in JobState if st.value in per}
        for src, per in sorted(by_source.items())
    }
    oldest: Job | None = None
    for job in queued:
        if oldest is None or job.updated_at < oldest.updated_at:
            oldest = job
    rows = sorted(
        (ProcessingRow.of(job, now) for job in processing),
        key=lambda r: -(r.age_s or 0.0),
    )
    finished_list = list(finished)
    return QueueReport(
        generated_at=now,
        depth=by_state[JobState.QUEUED.value],
        arq_depth=arq_depth,
        by_state=by_state,
        by_source=by_source,
        oldest_queued_id=None if oldest is None else oldest.id,
        oldest_queued_age_s=None if oldest is None else _age_s(now, oldest.updated_at),
        processing=rows,
        windows=[window_stats(finished_list, now, span, label) for label, span in WINDOWS],
        cold_start_s=cold_start_s,
        worker_memory_pct=worker_memory_pct,
        recent_failures=[
            RecentFailure(
                job_id=job.id,
                source=job.source.value,
                ended_ago_s=_age_s(now, job.completed_at or job.updated_at) or 0.0,
                error=job.error_message or "(no reason recorded)",
            )
            for job in recent_failures
        ],
        notes=list(notes),
    )


@dataclass(frozen=True)
class StuckAction:
    """What `/retry-stuck` did (or would do) with one job."""

    job_id: str
    source: str
    reason: str
    action: str  # requeued | failed | skipped | would requeue | would fail | error
    attempts: int
    max_attempts: int
    detail: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.job_id,
            "source": self.source,
            "reason": self.reason,
            "action": self.action,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class StuckReport:
    """The outcome of one `/retry-stuck` run."""

    dry_run: bool
    stuck_after_s: int
    actions: list[StuckAction]

    def count(self, action: str) -> int:
        return sum(1 for a in self.actions if a.action == action)

    def summary(self) -> str:
        """'requeued 2, failed 1' style one-liner (used for the audit row)."""
        if not self.actions:
            return "no stuck jobs"
        names = sorted({a.action for a in self.actions})
        return ", ".join(f"{name} {self.count(name)}" for name in names)

    def to_dict(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "stuck_after_s": self.stuck_after_s,
            "actions": [a.to_dict() for a in self.actions],
            "summary": self.summary(),
        }


def stuck_reason(job: Job, now: datetime, started_before: datetime) -> str:
    """Why a processing job counts as stuck: its lease expired, or it has run too long."""
    parts = []
    if job.lease_expires_at is not None and job.lease_expires_at < now:
        parts.append(f"lease expired {_minutes(now - job.lease_expires_at)} ago")
    started = job.started_at or job.updated_at
    if started < started_before:
        parts.append(f"processing for {_minutes(now - started)}")
    return "; ".join(parts) or "processing too long"


def _minutes(span: timedelta) -> str:
    seconds = max(span.total_seconds(), 0.0)
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"


def job_facts(job: Job, now: datetime) -> dict[str, object]:
    """The `/job <id>` figures, JSON-ready."""

    def iso(value: datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    waited = None
    if job.started_at is not None:
        waited = max((job.started_at - job.created_at).total_seconds(), 0.0)
    total = None
    if job.completed_at is not None:
        total = max((job.completed_at - job.created_at).total_seconds(), 0.0)
    return {
        "id": job.id,
        "status": job.status.value,
        "source": job.source.value,
        "requester": job.requester,
        "progress": job.progress,
        "step": job.current_step,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "error_message": job.error_message,
        "input_filename": job.input_filename,
        "input_size_bytes": job.input_size_bytes,
        "output_key": job.output_key,
        "lease_owner": job.lease_owner,
        "lease_expires_at": iso(job.lease_expires_at),
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "completed_at": iso(job.completed_at),
        "delivered_at": iso(job.delivered_at),
        "age_s": round(max((now - job.created_at).total_seconds(), 0.0), 1),
        "waited_s": None if waited is None else round(waited, 1),
        "total_s": None if total is None else round(total, 1),
        "processing_time_ms": job.processing_time_ms,
    }


def cold_start_of(report: Mapping[str, object] | None) -> float | None:
    """The Modal cold start (seconds) an engine report carries, if any.

    Looked for at `report["cold_start_s"]`, `report["timings"]["cold_start_s"]` or
    `report["modal"]["cold_start_s"]`; local runs have none.
    """
    if not report:
        return None
    candidates: list[object] = [report.get("cold_start_s")]
    for section in ("timings", "modal"):
        inner = report.get(section)
        if isinstance(inner, Mapping):
            candidates.append(inner.get("cold_start_s"))
    for value in candidates:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None
