"""`blanklogo worker`: the arq worker. Job functions only fetch Deps from ctx and call a service.

Registered functions: `run_job(job_id, attempt)`, `deliver_result(job_id, attempt)`; crons
(named with the Redis prefix, so deployments sharing a Redis do not collide):
`reap_expired_leases` and `reconcile_queue` every minute (the reconciler also at start-up),
`sweep_expired_results` hourly.

Each worker process also publishes its heartbeat every PRESENCE_EVERY_S through
`core.health.publish_worker_heartbeat` (key `{redis_prefix}:workers:{owner}`, expiring on
its own when the worker dies; removed on a clean stop); `/health` counts live workers from
these keys, and arq's `{queue_name}:health-check` key is refreshed every 30 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import sys
import time
from typing import Any

from arq import Retry, cron
from arq.constants import (
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
    retry_key_prefix,
)
from arq.worker import Worker, func
from redis.exceptions import RedisError

from core import delivery, processing, upkeep
from core.deps import Deps, build
from core.errors import QueueError, StoreError
from core.ports import DELIVERY_CLAIM_TTL
from core.processing import Policy
from core.queue import DELIVER_FUNCTION, RUN_FUNCTION, deserialize, redis_settings, serialize
from core.settings import Settings

logger = logging.getLogger(__name__)

#: how long a run waits here for a free engine slot before it is handed back to any worker
BUSY_WAIT_S = 1.0
#: how soon a handed-back run may be picked again (by this worker or another)
BUSY_RETRY_S = 0.25
#: how soon a run is tried again when the database did not answer
STORE_RETRY_S = 15.0
PRESENCE_EVERY_S = 10.0


async def run_job(ctx: dict[str, Any], job_id: str, attempt: int) -> str:
    """arq: run one attempt of a job (re-queued for any worker when this one is busy)."""
    slots: asyncio.Semaphore = ctx["slots"]
    try:
        await asyncio.wait_for(slots.acquire(), BUSY_WAIT_S)
    except TimeoutError:
        raise Retry(defer=BUSY_RETRY_S) from None
    try:
        ctx["running"] += 1
        await _publish_heartbeat(ctx)
        try:
            return await processing.run_job(
                ctx["deps"], job_id, int(attempt), owner=ctx["owner"], policy=ctx["policy"]
            )
        except StoreError as exc:
            # the database is away: try this run again later (a claimed job keeps its lease,
            # so the reaper returns it if we never get back to it)
            logger.warning("job %s: database unavailable (%s); run %s later", job_id, exc, attempt)
            raise Retry(defer=STORE_RETRY_S) from exc
        finally:
            ctx["running"] -= 1
            await asyncio.shield(_publish_heartbeat(ctx))
    finally:
        slots.release()


async def deliver_result(ctx: dict[str, Any], job_id: str, attempt: int) -> str:
    """arq: deliver an ended job's result through its channel (retried with backoff)."""
    try:
        return await delivery.deliver_result(ctx["deps"], job_id, int(attempt))
    except (StoreError, QueueError) as exc:
        # our own database or Redis failed, not the channel: let arq try this one again soon
        logger.warning("job %s: delivery interrupted (%s)", job_id, exc)
        raise Retry(defer=30 * ctx.get("job_try", 1)) from exc


async def reap_expired_leases(ctx: dict[str, Any]) -> int:
    """arq cron: requeue or fail jobs whose worker stopped renewing the lease."""
    return len(await upkeep.reap_expired_leases(ctx["deps"]))


async def reconcile_queue(ctx: dict[str, Any]) -> int:
    """arq cron: queue `queued` rows and pending deliveries Redis lost."""
    runs = await upkeep.reconcile_queue(ctx["deps"])
    deliveries = await upkeep.reconcile_deliveries(ctx["deps"])
    return len(runs) + len(deliveries)


async def sweep_expired_results(ctx: dict[str, Any]) -> int:
    """arq cron: delete files of jobs past their expiry."""
    return await upkeep.sweep_expired_results(ctx["deps"])


async def _startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx["settings"]
    if ctx.get("deps") is None:
        ctx["deps"] = await build(settings)
        ctx["owns_deps"] = True
    ctx.setdefault("policy", Policy.from_settings(settings))
    ctx["owner"] = processing.new_owner_id()
    ctx["slots"] = asyncio.Semaphore(ctx["policy"].max_concurrent_runs)
    ctx["running"] = 0
    ctx["started_at"] = time.time()
    ctx["presence"] = asyncio.create_task(_announce(ctx))
    logger.info("worker %s ready on queue %s", ctx["owner"], settings.queue_name)


async def _shutdown(ctx: dict[str, Any]) -> None:
    presence = ctx.pop("presence", None)
    if presence is not None:
        presence.cancel()
        with contextlib.suppress(BaseException):
            await presence
    deps: Deps | None = ctx.get("deps")
    if deps is not None:
        from core.health import remove_worker_heartbeat

        with contextlib.suppress(Exception):
            await remove_worker_heartbeat(deps.redis, deps.settings, ctx["owner"])
        if ctx.pop("owns_deps", False):
            await deps.close()
            ctx["deps"] = None
    logger.info("worker %s stopped", ctx.get("owner"))


async def _announce(ctx: dict[str, Any]) -> None:
    while True:
        await _publish_heartbeat(ctx)
        await asyncio.sleep(PRESENCE_EVERY_S)


async def _publish_heartbeat(ctx: dict[str, Any]) -> None:
    from core.health import publish_worker_heartbeat

    deps: Deps = ctx["deps"]
    try:
        await publish_worker_heartbeat(
            deps.redis,
            deps.settings,
            ctx["owner"],
            jobs_running=ctx["running"],
            started_at=ctx["started_at"],
        )
    except Exception as exc:  # noqa: BLE001 - presence is best effort; Redis may be down
        logger.warning("worker heartbeat not recorded: %s", exc.__class__.__name__)


def worker_settings(settings: Settings, *, policy: Policy | None = None) -> dict[str, Any]:
    """Keyword arguments for arq's Worker, built from our Settings."""
    policy = policy or Policy.from_settings(settings)
    prefix = settings.redis_prefix
    run_timeout = settings.engine_timeout_s + 3600  # our own timeouts fire first
    return {
        "functions": [
            func(run_job, name=RUN_FUNCTION, timeout=run_timeout, max_tries=10**6, keep_result=0),
            func(
                deliver_result,
                name=DELIVER_FUNCTION,
                timeout=int(DELIVERY_CLAIM_TTL.total_seconds()),
                max_tries=5,
                keep_result=0,
            ),
        ],
        "cron_jobs": [
            cron(reap_expired_leases, name=f"{prefix}:reap_expired_leases", timeout=300),
            cron(
                reconcile_queue,
                name=f"{prefix}:reconcile_queue",
                timeout=300,
                run_at_startup=True,
            ),
            cron(sweep_expired_results, name=f"{prefix}:sweep_expired_results", minute=7),
        ],
        "queue_name": settings.queue_name,
        "job_serializer": serialize,
        "job_deserializer": deserialize,
        "keep_result": 0,
        "max_jobs": policy.max_concurrent_runs + 4,
        "health_check_interval": 30,
        "retry_jobs": True,
        "on_startup": _startup,
        "on_shutdown": _shutdown,
        "ctx": {"settings": settings, "policy": policy},
    }


def build_worker(
    settings: Settings,
    *,
    deps: Deps | None = None,
    redis_url: str | None = None,
    policy: Policy | None = None,
    **arq_options: Any,
) -> StoppableWorker:
    """An arq Worker for our functions; with `deps` given, it uses (and does not close) them."""
    url = redis_url or settings.redis_url
    if not url:
        raise ValueError("the worker needs a Redis URL (REDIS_URL)")
    options = worker_settings(settings, policy=policy)
    if deps is not None:
        options["ctx"]["deps"] = deps
    options.update(arq_options)
    return StoppableWorker(redis_settings=redis_settings(url), **options)


class StoppableWorker(Worker):
    """arq's Worker, whose pick-up of jobs a stop never cuts in half.

    arq marks a run in progress in Redis, then starts its task. A stop landing between the
    two (the poll loop is cancelled mid-transaction) left the run queued but marked in
    progress with no task: every worker skipped it until arq's timeout ran out, and a burst
    worker polled it forever. Here a pick-up runs to its end; `close_worker` stops new ones
    and cancels every job task, including those the one under way started.
    """

    _picking: asyncio.Future[None] | None = None

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        if not self.allow_pick_jobs:
            return  # a stop began while these ids were being read
        self._picking = asyncio.ensure_future(super().start_jobs(job_ids))
        await asyncio.shield(self._picking)

    async def finish_picking(self) -> None:
        """Wait for a pick-up under way (it may start tasks). It may be waiting on arq's
        semaphore for a job task to end: cancel those first."""
        if self._picking is not None:
            await asyncio.gather(self._picking, return_exceptions=True)


async def close_worker(worker: StoppableWorker) -> None:
    """Stop a worker: cancel its running jobs (they hand themselves back), wait, shut down.

    arq's own `close()` gathers the job tasks without `return_exceptions`, so a task
    cancelled before it began re-raises CancelledError there and skips on_shutdown; here
    the tasks are awaited first and forgotten, then arq closes the rest. Cron runs it cut
    short are dropped from Redis, so that the next worker does not wait on them.
    """
    worker.allow_pick_jobs = False
    cut: set[str] = set()
    while True:
        # running now, or already cancelled by arq's own signal handler
        cut |= {
            job_id for job_id, task in worker.tasks.items() if task.cancelling() or not task.done()
        }
        for task in worker.tasks.values():
            # one cancel only: a second one would cut short a job that is handing itself back
            if not task.done() and not task.cancelling():
                task.cancel()
        await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
        await worker.finish_picking()
        if all(task.done() for task in worker.tasks.values()):
            break  # and no pick-up can start another
    worker.tasks.clear()
    await _drop_cut_cron_runs(worker, [job_id for job_id in cut if _is_cron_run(worker, job_id)])
    await worker.close()


def _is_cron_run(worker: Worker, arq_id: str) -> bool:
    """Whether an arq job id is a run of one of the worker's cron jobs (arq's `{name}:{ms}`)."""
    for cron_job in worker.cron_jobs:
        if arq_id == cron_job.job_id:
            return True
        name, _, ms = arq_id.rpartition(":")
        if cron_job.unique and name == cron_job.name and ms.isdigit():
            return True
    return False


async def _drop_cut_cron_runs(worker: Worker, arq_ids: list[str]) -> None:
    """Forget in Redis the cron runs a stop cut short.

    arq keeps a cancelled cron run queued with its in-progress marker for a minute, and
    then fails it ("max retries 1 exceeded"): a burst worker started meanwhile waits for
    it. A cron run is only one tick of a schedule; the next worker runs its own.
    """
    if not arq_ids or worker._pool is None:
        return
    keys = [
        prefix + arq_id
        for arq_id in arq_ids
        for prefix in (
            in_progress_key_prefix,
            job_key_prefix,
            retry_key_prefix,
            result_key_prefix,
        )
    ]
    try:
        async with worker.pool.pipeline(transaction=True) as pipe:
            pipe.delete(*keys)
            pipe.zrem(worker.queue_name, *arq_ids)
            await pipe.execute()
    except (RedisError, OSError) as exc:
        logger.warning(
            "cron runs %s cut short but left in Redis (%s)",
            ", ".join(arq_ids),
            exc.__class__.__name__,
        )
    else:
        logger.info(
            "cron runs %s cut short by the stop; dropped from the queue", ", ".join(arq_ids)
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `blanklogo worker`."""
    parser.add_argument(
        "--burst", action="store_true", help="stop once the queue is empty (for scripts)"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        help="videos this process works on at once (default: 1 with the local engine, 10 with Modal)",
    )


def run(args: argparse.Namespace) -> int:
    """`blanklogo worker`: process jobs until SIGTERM/SIGINT (the running job is handed back)."""
    settings = Settings()
    if not settings.redis_url:
        print(
            "REDIS_URL is not set: a separate worker must share Redis with the web process. "
            "Set REDIS_URL, or run `blanklogo dev` for web + worker on embedded defaults.",
            file=sys.stderr,
        )
        return 2
    policy = Policy.from_settings(settings)
    if args.jobs:
        policy = dataclasses.replace(policy, max_concurrent_runs=max(1, args.jobs))
    asyncio.run(_serve(settings, policy, burst=args.burst))
    return 0


async def _serve(settings: Settings, policy: Policy, *, burst: bool) -> None:
    worker = build_worker(settings, policy=policy, burst=burst)
    try:
        await worker.async_run()
    except asyncio.CancelledError:
        pass  # SIGTERM / SIGINT: arq cancelled the running jobs, which handed themselves back
    finally:
        await close_worker(worker)
