"""The run of one job on a worker: claim, heartbeat, download, engine, then finish or retry.

One log line per state change, with the job id, its source and how long it took.
A lost lease or a cancellation stops the engine at once and drops its result; a worker
that is stopping hands its job back at once instead of letting the lease run out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from core.delivery import schedule_delivery
from core.deps import Deps
from core.errors import BlankLogoError, InputError, QueueError, StoreError, UnsafeURL
from core.jobs import Job, JobState
from core.ports import EngineResult
from core.settings import Settings

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Policy:
    """Timing of a worker's runs; tests shorten it."""

    lease_s: int
    heartbeat_s: float
    retry_base_s: float = 5.0
    #: runs one worker process works on at once (the local engine wants the whole machine)
    max_concurrent_runs: int = 1

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        """Heartbeat every lease/5 (at most 5 s, so a cancel stops work quickly)."""
        lease = settings.job_lease_seconds
        return cls(
            lease_s=lease,
            heartbeat_s=max(0.2, min(lease / 5, 5.0)),
            max_concurrent_runs=10 if settings.gpu_backend == "modal" else 1,
        )

    def retry_delay(self, attempts: int) -> float:
        """2^attempts × base seconds, plus up to 25 % jitter."""
        delay = (2**attempts) * self.retry_base_s
        return delay * (1 + random.uniform(0, 0.25))


def new_owner_id() -> str:
    """A lease owner name unique to this worker process: host:pid:random."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class _Tracker:
    """What the work reported so far; the heartbeat writes it to the row."""

    percent: int = 0
    step: str = "starting"
    extra_fields: dict[str, Any] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def report(self, percent: int, step: str) -> None:
        self.percent = max(0, min(100, int(percent)))
        if step != self.step:
            self.step = step
            self.changed.set()


def is_permanent(exc: BaseException) -> bool:
    """Whether retrying cannot help: bad input, an unsafe URL, or an engine error marked so."""
    return isinstance(exc, InputError | UnsafeURL) or bool(getattr(exc, "permanent", False))


def describe(exc: BaseException) -> str:
    """Readable reason for error_message; unexpected exceptions show only their class."""
    if isinstance(exc, BlankLogoError):
        return str(exc) or exc.__class__.__name__
    return f"internal error ({exc.__class__.__name__})"


async def run_job(deps: Deps, job_id: str, attempt: int, *, owner: str, policy: Policy) -> str:
    """Run one attempt of a job if it is still queued for it; return what happened."""
    job = await deps.store.get(job_id)
    if job is None:
        logger.warning("job %s: not found, run %d dropped", job_id, attempt)
        return "unknown job"
    if attempt <= job.attempts:
        return f"stale run {attempt} (job already had {job.attempts})"
    if job.status != JobState.QUEUED:
        return f"job is {job.status.value}"
    claimed = await _claim(deps, job_id, owner, policy)
    if claimed is None:
        return "claimed by another worker"
    logger.info(
        "job %s ▶ processing (%s, attempt %d/%d, waited %.1fs)",
        job_id,
        claimed.source.value,
        claimed.attempts,
        claimed.max_attempts,
        _age_s(claimed),
    )
    return await _run_claimed(deps, claimed, owner, policy)


async def _claim(deps: Deps, job_id: str, owner: str, policy: Policy) -> Job | None:
    """Claim the job; a worker stopping meanwhile lets the claim finish, then hands it back."""
    claiming = asyncio.ensure_future(deps.store.claim(job_id, owner, policy.lease_s))
    try:
        return await asyncio.shield(claiming)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            claimed = await claiming
            if claimed is not None:
                await hand_back(deps, claimed, owner, _Tracker(), 0.0)
        raise


async def _uninterruptible(coro: Coroutine[Any, Any, T]) -> T:
    """Run a short store step to its end even if the worker is stopping, then re-raise."""
    task = asyncio.ensure_future(coro)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await task
        raise


def _age_s(job: Job) -> float:
    started = job.started_at or job.updated_at
    return max(0.0, (started - job.created_at).total_seconds())


async def _run_claimed(deps: Deps, job: Job, owner: str, policy: Policy) -> str:
    started = time.monotonic()
    tracker = _Tracker()
    work: asyncio.Task[EngineResult] = asyncio.create_task(
        _work(deps, job, tracker), name=f"job-{job.id}"
    )
    try:
        lost = await _heartbeat_until_done(deps, job, owner, policy, work, tracker)
    except asyncio.CancelledError:
        await _stop(work)
        await _uninterruptible(hand_back(deps, job, owner, tracker, time.monotonic() - started))
        raise
    elapsed = time.monotonic() - started
    return await _uninterruptible(_finish(deps, job, owner, policy, work, tracker, lost, elapsed))


async def _finish(
    deps: Deps,
    job: Job,
    owner: str,
    policy: Policy,
    work: asyncio.Task[EngineResult],
    tracker: _Tracker,
    lost: bool,
    elapsed: float,
) -> str:
    """Record how the work ended: completed, failed, retrying, or dropped (lease lost)."""
    if lost:
        return await _after_lost_lease(deps, job, elapsed)
    exc = work.exception()
    if exc is None:
        return await _complete(deps, job, owner, tracker, work.result(), elapsed)
    if is_permanent(exc):
        return await _fail(deps, job, owner, tracker, describe(exc), elapsed)
    if not isinstance(exc, BlankLogoError):
        logger.error("job %s: unexpected error", job.id, exc_info=exc)
    return await _retry_or_fail(deps, job, owner, tracker, policy, describe(exc), elapsed)


async def _work(deps: Deps, job: Job, tracker: _Tracker) -> EngineResult:
    """Download the video if the job came as a URL, then run the engine on it."""
    url = job.options.get("video_url")
    if url and not job.input_key:
        from core.fetch import fetch_to_storage

        key = f"inputs/{job.id}/source"
        await tracker.report(0, "downloading")
        if not await deps.storage.exists(key):
            size = await fetch_to_storage(deps.settings, deps.storage, str(url), key)
            tracker.extra_fields["input_size_bytes"] = size
        tracker.extra_fields["input_key"] = key
        job = job.replace(input_key=key)
    if not job.input_key:
        raise InputError("this job has no video to work on")
    await tracker.report(0, "processing")
    return await deps.engine.process(job, tracker.report)


async def _heartbeat_until_done(
    deps: Deps,
    job: Job,
    owner: str,
    policy: Policy,
    work: asyncio.Task[EngineResult],
    tracker: _Tracker,
) -> bool:
    """Renew the lease until the work ends; True (work stopped) when the lease is gone."""
    notifying: asyncio.Task[None] | None = None
    try:
        while True:
            tracker.changed.clear()
            step_changed = asyncio.create_task(tracker.changed.wait())
            try:
                await asyncio.wait(
                    {work, step_changed},
                    timeout=policy.heartbeat_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                step_changed.cancel()
            if work.done():
                return False
            try:
                beat = await asyncio.shield(
                    deps.store.heartbeat(
                        job.id, owner, policy.lease_s, progress=tracker.percent, step=tracker.step
                    )
                )
            except StoreError as exc:
                logger.warning("job %s: heartbeat failed (%s); will try again", job.id, exc)
                continue
            if beat is None:
                await _stop(work)
                return True
            if notifying is None or notifying.done():
                notifying = asyncio.create_task(_notify_progress(deps, beat))
    finally:
        if notifying is not None and not notifying.done():
            notifying.cancel()


async def _notify_progress(deps: Deps, job: Job) -> None:
    notifier = deps.notifiers.get(job.source)
    if notifier is None:
        return
    try:
        await notifier.progress(job)
    except Exception:  # noqa: BLE001 - progress is best effort by contract
        logger.warning("job %s: progress notice failed", job.id, exc_info=True)


async def _stop(work: asyncio.Task[Any]) -> None:
    """Cancel the work (the engine kills its child process) and wait until it has stopped."""
    work.cancel()
    with contextlib.suppress(BaseException):
        await work


async def _after_lost_lease(deps: Deps, job: Job, elapsed: float) -> str:
    current = await deps.store.get(job.id)
    state = current.status.value if current else "gone"
    logger.info(
        "job %s ■ stopped after %.1fs (%s): no longer ours, now %s; result dropped",
        job.id,
        elapsed,
        job.source.value,
        state,
    )
    if current is not None and current.status == JobState.CANCELLED:
        await schedule_delivery(deps, job.id)
    return f"stopped: job is {state}"


async def _complete(
    deps: Deps, job: Job, owner: str, tracker: _Tracker, result: EngineResult, elapsed: float
) -> str:
    done = await deps.store.move(
        job.id,
        JobState.COMPLETED,
        expected=[JobState.PROCESSING],
        owner=owner,
        progress=100,
        current_step="done",
        output_key=result.output_key,
        output_size_bytes=result.output_size_bytes,
        processing_time_ms=int(elapsed * 1000),
        report=result.report,
        error_message=None,
        **_facts_from_report(result.report),
        **tracker.extra_fields,
    )
    if done is None:
        return await _after_lost_lease(deps, job, elapsed)
    logger.info("job %s ● completed in %.1fs (%s)", job.id, elapsed, job.source.value)
    await schedule_delivery(deps, job.id)
    return "completed"


def _facts_from_report(report: dict[str, Any]) -> dict[str, Any]:
    """Columns the engine's report fills in: the video's duration."""
    duration = report.get("duration_s")
    if isinstance(duration, int | float) and not isinstance(duration, bool):
        return {"input_duration_sec": float(duration)}
    return {}


async def _fail(
    deps: Deps, job: Job, owner: str, tracker: _Tracker, reason: str, elapsed: float
) -> str:
    failed = await deps.store.move(
        job.id,
        JobState.FAILED,
        expected=[JobState.PROCESSING],
        owner=owner,
        error_message=reason,
        processing_time_ms=int(elapsed * 1000),
        **tracker.extra_fields,
    )
    if failed is None:
        return await _after_lost_lease(deps, job, elapsed)
    logger.info("job %s ✖ failed after %.1fs (%s): %s", job.id, elapsed, job.source.value, reason)
    await schedule_delivery(deps, job.id)
    return "failed"


async def _retry_or_fail(
    deps: Deps,
    job: Job,
    owner: str,
    tracker: _Tracker,
    policy: Policy,
    reason: str,
    elapsed: float,
) -> str:
    if job.attempts >= job.max_attempts:
        return await _fail(
            deps, job, owner, tracker, f"gave up after {job.attempts} attempts: {reason}", elapsed
        )
    delay = policy.retry_delay(job.attempts)
    requeued = await requeue(
        deps,
        job,
        step="waiting to retry",
        defer_s=delay,
        owner=owner,
        error_message=f"attempt {job.attempts} failed: {reason}",
        **tracker.extra_fields,
    )
    if requeued is None:
        return await _after_lost_lease(deps, job, elapsed)
    logger.info(
        "job %s ↻ attempt %d failed after %.1fs (%s): %s; retrying in %.1fs",
        job.id,
        job.attempts,
        elapsed,
        job.source.value,
        reason,
        delay,
    )
    return "retrying"


async def hand_back(deps: Deps, job: Job, owner: str, tracker: _Tracker, elapsed: float) -> None:
    """Return a job this stopping worker holds to the queue now; the attempt is not counted."""
    try:
        back = await requeue(
            deps,
            job,
            step="waiting for a worker",
            defer_s=0,
            owner=owner,
            attempts=max(0, job.attempts - 1),
            **tracker.extra_fields,
        )
    except StoreError as exc:
        logger.warning("job %s: could not hand back (%s); its lease will expire", job.id, exc)
        return
    if back is not None:
        logger.info(
            "job %s ↩ handed back after %.1fs (%s): worker stopping",
            job.id,
            elapsed,
            job.source.value,
        )


async def requeue(
    deps: Deps,
    job: Job,
    *,
    step: str,
    defer_s: float,
    owner: str | None = None,
    lease_expired_before: datetime | None = None,
    **fields: Any,
) -> Job | None:
    """Move a processing job back to `queued` and queue its next run in `defer_s` seconds.

    Conditional on the job still being `processing` and, when given, on `owner` holding
    its lease or on the lease having expired before `lease_expired_before`, so two
    callers never requeue it twice. Returns the moved job, or None when the condition
    did not hold. A run Redis refuses is left to the reconciler (the row says `queued`).
    """
    moved = await deps.store.move(
        job.id,
        JobState.QUEUED,
        expected=[JobState.PROCESSING],
        owner=owner,
        lease_expired_before=lease_expired_before,
        current_step=step,
        **fields,
    )
    if moved is not None:
        try:
            await deps.queue.enqueue_run(moved.id, moved.attempts + 1, defer_s=defer_s)
        except QueueError as exc:
            logger.warning("job %s: next run not queued (%s); the reconciler will", job.id, exc)
    return moved
