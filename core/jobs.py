"""The job model and the one pure function that owns its state transitions."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from core.errors import IllegalTransition


class JobState(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Source(StrEnum):
    SLACK = "slack"
    TELEGRAM = "telegram"
    WEBHOOK = "webhook"
    CLI = "cli"


TERMINAL_STATES = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED})

# DESIGN.md: queued → processing → completed | failed; processing → queued (lease expired
# or retryable error); queued|processing → cancelled; failed → queued (operator retry).
# cancelled → queued is the operator's `/retry <id>` of a cancelled job (issue 6).
_ALLOWED: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.PROCESSING, JobState.CANCELLED}),
    JobState.PROCESSING: frozenset(
        {JobState.COMPLETED, JobState.FAILED, JobState.QUEUED, JobState.CANCELLED}
    ),
    JobState.FAILED: frozenset({JobState.QUEUED}),
    JobState.CANCELLED: frozenset({JobState.QUEUED}),
    JobState.COMPLETED: frozenset(),
}


def transition(current: JobState | str, target: JobState | str) -> JobState:
    """Return `target` if a job may move there from `current`, else raise IllegalTransition."""
    cur, tgt = JobState(current), JobState(target)
    if tgt not in _ALLOWED[cur]:
        raise IllegalTransition(f"a {cur.value} job cannot become {tgt.value}")
    return tgt


def sources_of(state: JobState | str) -> frozenset[JobState]:
    """The states from which a job may move to `state` (used for conditional updates)."""
    tgt = JobState(state)
    return frozenset(s for s, targets in _ALLOWED.items() if tgt in targets)


def new_job_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Job:
    """One row of `bl_jobs`."""

    id: str
    source: Source
    requester: str
    reply_to: dict[str, Any]
    status: JobState
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    progress: int = 0
    current_step: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    input_key: str | None = None
    input_filename: str | None = None
    input_size_bytes: int | None = None
    input_duration_sec: float | None = None
    output_key: str | None = None
    output_size_bytes: int | None = None
    attempts: int = 0
    max_attempts: int = 3
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    error_message: str | None = None
    processing_time_ms: int | None = None
    idempotency_key: str | None = None
    delivered_at: datetime | None = None
    delivery_claimed_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    report: dict[str, Any] | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATES

    def replace(self, **changes: Any) -> Job:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class NewJob:
    """What an intake channel knows when it accepts a video."""

    source: Source
    requester: str
    reply_to: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)
    input_key: str | None = None
    input_filename: str | None = None
    input_size_bytes: int | None = None
    idempotency_key: str | None = None
    max_attempts: int = 3
    id: str = field(default_factory=new_job_id)

    def to_job(self, now: datetime, ttl: timedelta) -> Job:
        return Job(
            id=self.id,
            source=self.source,
            requester=self.requester,
            reply_to=self.reply_to,
            status=JobState.QUEUED,
            created_at=now,
            updated_at=now,
            expires_at=now + ttl,
            options=self.options,
            input_key=self.input_key,
            input_filename=self.input_filename,
            input_size_bytes=self.input_size_bytes,
            idempotency_key=self.idempotency_key,
            max_attempts=self.max_attempts,
        )
