"""The ports: each adapter (database, file store, queue, engine, chat channel) behind one small interface.

The pure core and the services speak only to these; `core.deps.build` wires the adapters.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from core.jobs import Job, JobState, NewJob, Source

#: a delivery claim older than this is taken to belong to a worker that died mid-delivery;
#: it is also arq's timeout for one delivery try (core.worker), so a live try is never robbed
DELIVERY_CLAIM_TTL = timedelta(minutes=15)

#: progress callback used by the worker: (percent 0-100, current step) -> awaitable
ProgressFn = Callable[[int, str], Awaitable[None]]


@dataclass(frozen=True)
class AuditEntry:
    """One operator command, allowed or refused."""

    actor: str  # platform user id ("slack:U123", "telegram:42", "cli:alice")
    channel: str  # slack | telegram | cli | http
    command: str  # "health", "retry-stuck", ...
    args: str
    outcome: str  # "ok" | "refused" | "error"
    detail: str = ""
    at: datetime | None = None  # filled by the store when None
    id: int | None = None


@dataclass(frozen=True)
class FinishedJob:
    """The figures of one ended job that ops statistics need."""

    id: str
    source: Source
    status: JobState
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None


class JobStore(Protocol):
    """`bl_jobs` and the audit table. Every state change is a conditional update."""

    async def migrate(self) -> list[str]:
        """Apply pending versioned SQL migrations; return the versions applied now."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Run a real query; raise StoreError when the database cannot answer."""

    async def create(self, new: NewJob) -> tuple[Job, bool]:
        """Insert a queued job; with an `idempotency_key` already known, return (that job, False)."""

    async def get(self, job_id: str) -> Job | None: ...

    async def claim(self, job_id: str, owner: str, lease_seconds: int) -> Job | None:
        """queued → processing for `owner` with a lease, attempts + 1; None if not claimable."""

    async def heartbeat(
        self,
        job_id: str,
        owner: str,
        lease_seconds: int,
        progress: int | None = None,
        step: str | None = None,
    ) -> Job | None:
        """Renew the lease and record progress; None when `owner` no longer holds the job."""

    async def move(
        self,
        job_id: str,
        target: JobState,
        *,
        expected: Iterable[JobState] | None = None,
        owner: str | None = None,
        lease_expired_before: datetime | None = None,
        **fields: Any,
    ) -> Job | None:
        """Conditionally move a job to `target`, setting `fields` too.

        Checks the move with `core.jobs.transition`; the row changes only if its status is in
        `expected` (default: every state allowed to reach `target`), and, when given, its
        lease_owner is `owner` / its lease expired before `lease_expired_before`. Leaving
        `processing` clears the lease; reaching a terminal state sets completed_at.
        Returns the updated job, or None when the condition did not hold.
        """

    async def claim_delivery(
        self, job_id: str, stale_after: timedelta = DELIVERY_CLAIM_TTL
    ) -> bool:
        """Claim the delivery of an undelivered job; True only for the one caller that got it.

        A claim older than `stale_after` (its worker died mid-delivery) may be taken again.
        """

    async def confirm_delivery(self, job_id: str) -> None:
        """Set delivered_at: the requester was told (or the delivery was given up: settled)."""

    async def release_delivery(self, job_id: str) -> None:
        """Clear the claim and delivered_at after a delivery attempt failed, so it can be retried."""

    async def undelivered(
        self, ended_before: datetime, limit: int = 100, claimed_before: datetime | None = None
    ) -> list[Job]:
        """Ended jobs not delivered, ended before `ended_before`, unclaimed or claimed before
        `claimed_before` (default: `ended_before`)."""

    async def list_jobs(
        self,
        *,
        states: Iterable[JobState] | None = None,
        source: Source | None = None,
        limit: int = 100,
    ) -> list[Job]:
        """Jobs, oldest first."""

    async def expired_leases(self, now: datetime) -> list[Job]:
        """Processing jobs whose lease expired before `now`."""

    async def stuck_jobs(self, started_before: datetime, now: datetime) -> list[Job]:
        """Processing jobs started before `started_before`, or whose lease expired before `now`."""

    async def queued_ids(self) -> list[str]: ...

    async def queue_position(self, job: Job) -> int:
        """1 + the number of queued jobs created before `job` (ties broken by id); 0 if not queued."""

    async def counts_by_state(self) -> Mapping[tuple[JobState, Source], int]:
        """Number of jobs per (state, source)."""

    async def finished_since(self, since: datetime) -> list[FinishedJob]:
        """Jobs that reached completed or failed at or after `since`."""

    async def expired_results(self, now: datetime, limit: int = 100) -> list[Job]:
        """Jobs past expires_at that still have an input or output in storage."""

    async def clear_files(self, job_id: str) -> None:
        """Forget input_key and output_key after the files were deleted."""

    async def record_audit(self, entry: AuditEntry) -> None: ...

    async def audit_log(self, limit: int = 50) -> list[AuditEntry]:
        """Newest first."""


class Storage(Protocol):
    """Where videos live (local directory or Supabase Storage); they move by key or signed URL."""

    async def put_file(self, key: str, path: Path, content_type: str = "video/mp4") -> int:
        """Store a local file under `key`; return its size in bytes."""

    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        content_type: str = "application/octet-stream",
        max_bytes: int | None = None,
    ) -> int:
        """Store a stream without holding it in memory; raise VideoTooLarge past `max_bytes`,
        leaving nothing stored."""

    async def get_file(self, key: str, dest: Path) -> None:
        """Copy the object to a local path; raise StorageError when missing or unreadable."""

    async def signed_url(self, key: str, expires_in: int = 3600) -> str:
        """A URL anyone holding it may GET until it expires."""

    async def delete(self, key: str) -> None:
        """Remove the object; a missing object is not an error."""

    async def exists(self, key: str) -> bool: ...


@dataclass(frozen=True)
class EngineResult:
    output_key: str
    output_size_bytes: int
    report: dict[str, Any] = field(default_factory=dict)


class Engine(Protocol):
    """Runs the removal on one job: input from storage, output back to storage."""

    async def process(self, job: Job, progress: ProgressFn) -> EngineResult: ...

    async def health(self) -> dict[str, Any]:
        """{"status": "ok"|"degraded"|"down", ...facts: device, backend, versions}."""


class Notifier(Protocol):
    """Talks back to the person who sent the job, in the channel it came from."""

    async def progress(self, job: Job) -> None:
        """Best effort, rate-limited by the notifier itself; never raises."""

    async def deliver(self, job: Job) -> None:
        """Tell the requester the job ended (result or reason); raise DeliveryError to retry."""


class JobQueue(Protocol):
    """arq on Redis; it carries job ids only and is never the source of truth."""

    async def enqueue_run(self, job_id: str, attempt: int, defer_s: float = 0) -> bool:
        """Queue a run of the job; False when arq already holds this attempt."""

    async def enqueue_delivery(self, job_id: str, attempt: int = 0, defer_s: float = 0) -> None: ...

    async def holds(self, job_id: str, attempt: int) -> bool:
        """Whether arq has this run queued or in progress."""

    async def drop_stale_pickup(self, job_id: str, attempt: int) -> bool:
        """Forget arq's in-progress marker of a run whose worker died before claiming the row.

        arq then hands the run (still in its queue) to the next worker; True if one was dropped.
        """

    async def holds_delivery(self, job_id: str, attempts: int) -> bool:
        """Whether arq has any of delivery tries 0..attempts of the job queued or in progress."""

    async def drop_stale_delivery_pickup(self, job_id: str, attempts: int) -> bool:
        """Forget arq's in-progress markers of delivery tries 0..attempts, left by a worker
        that died inside them; arq then hands a try still in its queue to the next worker.

        True if one was dropped.
        """

    async def depth(self) -> int: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
