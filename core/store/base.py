"""The JobStore logic, written once over a few primitives that each database adapter provides.

`SqlJobStore` turns every port method into SQL built by `core.store.rows`; the
PostgreSQL and SQLite adapters only run statements, wrap them in transactions and
translate their driver's errors into StoreError.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from core.errors import StoreError
from core.jobs import Job, JobState, NewJob, Source
from core.ports import DELIVERY_CLAIM_TTL, AuditEntry, FinishedJob
from core.store import rows
from core.store.rows import Dialect, Query

JOB_SELECT = ", ".join(rows.JOB_COLUMNS)
AUDIT_SELECT = ", ".join(rows.AUDIT_COLUMNS)
Row = Mapping[str, Any]


class SqlJobStore(ABC):
    """A JobStore over SQL; subclasses supply the connection handling."""

    dialect: Dialect

    def __init__(
        self,
        *,
        result_ttl: timedelta = timedelta(days=7),
        clock: Callable[[], datetime] = rows.utcnow,
    ) -> None:
        self._ttl = result_ttl
        self._clock = clock

    # -- primitives each adapter provides -------------------------------------------------

    @abstractmethod
    async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Rows of a SELECT."""

    @abstractmethod
    async def _execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; return how many rows it changed."""

    @abstractmethod
    async def _update_returning(self, sql: str, params: Sequence[Any], job_id: str) -> Row | None:
        """Run a conditional UPDATE of one job atomically; the changed row, or None."""

    @abstractmethod
    async def migrate(self) -> list[str]:
        """Apply pending versioned SQL migrations; return the versions applied now."""

    @abstractmethod
    async def close(self) -> None:
        """Release the connections."""

    # -- the port ---------------------------------------------------------------------------

    def _now(self) -> datetime:
        return rows.utc(self._clock())

    def _job(self, row: Row | None) -> Job | None:
        return None if row is None else rows.row_to_job(row, self.dialect)

    async def _fetch_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        found = await self._fetch(sql, params)
        return found[0] if found else None

    async def _update(self, q: Query, job_id: str) -> Job | None:
        return self._job(await self._update_returning(q.sql, q.params, job_id))

    async def ping(self) -> None:
        """Run a real query; raise StoreError when the database cannot answer."""
        await self._fetch("SELECT COUNT(*) AS n FROM bl_jobs WHERE 1 = 0")

    async def create(self, new: NewJob) -> tuple[Job, bool]:
        """Insert a queued job; with an `idempotency_key` already known, return (that job, False)."""
        job = new.to_job(self._now(), self._ttl)
        q = rows.insert_job(job, self.dialect)
        if await self._execute(q.sql, q.params):
            return job, True
        existing = None
        if new.idempotency_key is not None:
            existing = await self._select_job("idempotency_key", new.idempotency_key)
        existing = existing or await self.get(new.id)
        if existing is None:  # the conflicting row vanished between the two statements
            raise StoreError("the job could not be created; try again")
        return existing, False

    async def _select_job(self, column: str, value: Any) -> Job | None:
        q = Query(self.dialect)
        sql = f"SELECT {JOB_SELECT} FROM bl_jobs WHERE {column} = {q.param(value)}"
        return self._job(await self._fetch_one(sql, q.params))

    async def get(self, job_id: str) -> Job | None:
        """The job with this id, or None."""
        return await self._select_job("id", job_id)

    async def claim(self, job_id: str, owner: str, lease_seconds: int) -> Job | None:
        """queued → processing for `owner` with a lease, attempts + 1; None if not claimable."""
        now = self._now()
        until = now + timedelta(seconds=lease_seconds)
        return await self._update(
            rows.claim_update(job_id, owner, until, now, self.dialect), job_id
        )

    async def heartbeat(
        self,
        job_id: str,
        owner: str,
        lease_seconds: int,
        progress: int | None = None,
        step: str | None = None,
    ) -> Job | None:
        """Renew the lease and record progress; None when `owner` no longer holds the job."""
        now = self._now()
        until = now + timedelta(seconds=lease_seconds)
        q = rows.heartbeat_update(job_id, owner, until, now, progress, step, self.dialect)
        return await self._update(q, job_id)

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
        """Conditionally move a job to `target`, setting `fields` too (see JobStore.move)."""
        q = rows.move_update(
            job_id,
            target,
            self._now(),
            self.dialect,
            expected=expected,
            owner=owner,
            lease_expired_before=lease_expired_before,
            fields=fields,
        )
        return await self._update(q, job_id)

    async def claim_delivery(
        self, job_id: str, stale_after: timedelta = DELIVERY_CLAIM_TTL
    ) -> bool:
        """Claim the delivery of an undelivered job; True only for the one caller that got it."""
        now = self._now()
        q = Query(self.dialect)
        sql = (
            f"UPDATE bl_jobs SET delivery_claimed_at = {q.param(now, 'delivery_claimed_at')}"
            f" WHERE id = {q.param(job_id)} AND delivered_at IS NULL AND (delivery_claimed_at"
            f" IS NULL OR delivery_claimed_at < {q.param(now - stale_after, 'delivery_claimed_at')})"
        )
        return await self._execute(sql, q.params) == 1

    async def confirm_delivery(self, job_id: str) -> None:
        """Set delivered_at: the requester was told (or the delivery was given up: settled)."""
        q = Query(self.dialect)
        sql = (
            f"UPDATE bl_jobs SET delivered_at = {q.param(self._now(), 'delivered_at')}"
            f" WHERE id = {q.param(job_id)}"
        )
        await self._execute(sql, q.params)

    async def release_delivery(self, job_id: str) -> None:
        """Clear the claim and delivered_at after a delivery attempt failed, so it can be retried."""
        q = Query(self.dialect)
        await self._execute(
            "UPDATE bl_jobs SET delivered_at = NULL, delivery_claimed_at = NULL"
            f" WHERE id = {q.param(job_id)}",
            q.params,
        )

    async def undelivered(
        self, ended_before: datetime, limit: int = 100, claimed_before: datetime | None = None
    ) -> list[Job]:
        """Ended jobs not delivered, ended before `ended_before`, unclaimed or claimed before
        `claimed_before` (default: `ended_before`)."""
        q = Query(self.dialect)
        claimed_before = claimed_before or ended_before
        where = [
            q.in_list("status", [JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED]),
            "delivered_at IS NULL",
            f"completed_at < {q.param(ended_before, 'completed_at')}",
            "(delivery_claimed_at IS NULL OR delivery_claimed_at"
            f" < {q.param(claimed_before, 'delivery_claimed_at')})",
        ]
        return await self._jobs(q, where, "completed_at, id", limit)

    async def _jobs(
        self, q: Query, where: Sequence[str], order: str, limit: int | None
    ) -> list[Job]:
        sql = f"SELECT {JOB_SELECT} FROM bl_jobs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY {order}"
        if limit is not None:
            sql += f" LIMIT {q.param(int(limit))}"
        return [rows.row_to_job(r, self.dialect) for r in await self._fetch(sql, q.params)]

    async def list_jobs(
        self,
        *,
        states: Iterable[JobState] | None = None,
        source: Source | None = None,
        limit: int = 100,
    ) -> list[Job]:
        """Jobs, oldest first."""
        q = Query(self.dialect)
        where = []
        if states is not None:
            where.append(q.in_list("status", states))
        if source is not None:
            where.append(f"source = {q.param(Source(source).value)}")
        return await self._jobs(q, where, "created_at, id", limit)

    async def expired_leases(self, now: datetime) -> list[Job]:
        """Processing jobs whose lease expired before `now`."""
        q = Query(self.dialect)
        where = [
            f"status = {q.param(JobState.PROCESSING.value)}",
            f"lease_expires_at < {q.param(now, 'lease_expires_at')}",
        ]
        return await self._jobs(q, where, "lease_expires_at, id", None)

    async def stuck_jobs(self, started_before: datetime, now: datetime) -> list[Job]:
        """Processing jobs started before `started_before`, or whose lease expired before `now`."""
        q = Query(self.dialect)
        where = [
            f"status = {q.param(JobState.PROCESSING.value)}",
            f"(started_at < {q.param(started_before, 'started_at')}"
            f" OR lease_expires_at < {q.param(now, 'lease_expires_at')})",
        ]
        return await self._jobs(q, where, "started_at, id", None)

    async def queued_ids(self) -> list[str]:
        """Ids of queued jobs, oldest first."""
        q = Query(self.dialect)
        sql = (
            f"SELECT id FROM bl_jobs WHERE status = {q.param(JobState.QUEUED.value)}"
            " ORDER BY created_at, id"
        )
        return [r["id"] for r in await self._fetch(sql, q.params)]

    async def queue_position(self, job: Job) -> int:
        """1 + the number of queued jobs created before `job` (ties broken by id); 0 if not queued."""
        if job.status != JobState.QUEUED:
            return 0
        q = Query(self.dialect)
        queued = q.param(JobState.QUEUED.value)
        created = q.param(job.created_at, "created_at")
        same = q.param(job.created_at, "created_at")
        sql = (
            f"SELECT COUNT(*) AS n FROM bl_jobs WHERE status = {queued}"
            f" AND (created_at < {created} OR (created_at = {same} AND id < {q.param(job.id)}))"
        )
        found = await self._fetch_one(sql, q.params)
        return int(found["n"] if found else 0) + 1

    async def counts_by_state(self) -> Mapping[tuple[JobState, Source], int]:
        """Number of jobs per (state, source)."""
        found = await self._fetch(
            "SELECT status, source, COUNT(*) AS n FROM bl_jobs GROUP BY status, source"
        )
        return {(JobState(r["status"]), Source(r["source"])): int(r["n"]) for r in found}

    async def finished_since(self, since: datetime) -> list[FinishedJob]:
        """Jobs that reached completed or failed at or after `since`."""
        q = Query(self.dialect)
        sql = (
            "SELECT id, source, status, created_at, started_at, completed_at FROM bl_jobs"
            f" WHERE {q.in_list('status', [JobState.COMPLETED, JobState.FAILED])}"
            f" AND completed_at >= {q.param(since, 'completed_at')} ORDER BY completed_at, id"
        )
        return [rows.row_to_finished(r, self.dialect) for r in await self._fetch(sql, q.params)]

    async def expired_results(self, now: datetime, limit: int = 100) -> list[Job]:
        """Ended jobs past expires_at that still have an input or output in storage.

        Queued and processing jobs are left alone even past expires_at: their input is
        still needed.
        """
        q = Query(self.dialect)
        where = [
            q.in_list("status", [JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED]),
            f"expires_at < {q.param(now, 'expires_at')}",
            "(input_key IS NOT NULL OR output_key IS NOT NULL)",
        ]
        return await self._jobs(q, where, "expires_at, id", limit)

    async def clear_files(self, job_id: str) -> None:
        """Forget input_key and output_key after the files were deleted."""
        q = Query(self.dialect)
        sql = (
            "UPDATE bl_jobs SET input_key = NULL, output_key = NULL,"
            f" updated_at = {q.param(self._now(), 'updated_at')} WHERE id = {q.param(job_id)}"
        )
        await self._execute(sql, q.params)

    async def record_audit(self, entry: AuditEntry) -> None:
        """Write one operator command to `bl_audit`."""
        q = Query(self.dialect)
        at = entry.at or self._now()
        values = [
            q.param(at, "at"),
            q.param(entry.actor),
            q.param(entry.channel),
            q.param(entry.command),
            q.param(entry.args),
            q.param(entry.outcome),
            q.param(entry.detail),
        ]
        sql = (
            "INSERT INTO bl_audit (at, actor, channel, command, args, outcome, detail)"
            f" VALUES ({', '.join(values)})"
        )
        await self._execute(sql, q.params)

    async def audit_log(self, limit: int = 50) -> list[AuditEntry]:
        """Newest first."""
        q = Query(self.dialect)
        sql = f"SELECT {AUDIT_SELECT} FROM bl_audit ORDER BY at DESC, id DESC LIMIT {q.param(int(limit))}"
        return [rows.row_to_audit(r, self.dialect) for r in await self._fetch(sql, q.params)]
