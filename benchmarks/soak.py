"""Soak: a few thousand jobs through two worker processes, one SIGKILLed and restarted in the
middle, then a count that every job ended exactly once (one terminal state, one delivery).
Worker 1 is killed once a third of the runs ended, at a moment the database shows it holding
leases; the exit status is 1 also when that never happened (a soak without a kill proves nothing).

Loopback only and bounded: the private Redis, database and worker processes of
`benchmarks/queue_throughput.py` (trivial engine stand-in and counting notifier, benchmark
only). The lease is short (--lease-s) so the killed worker's jobs come back quickly; the
driver also runs the reaper every 2 s (in production the workers' cron does it once a minute)
and, once every run ended but deliveries stall after the kill, the delivery reconciler
without its 5 min grace.

    python benchmarks/soak.py [--jobs 2000] [--slots 8] [--db postgres|sqlite]
                              [--lease-s 5] [--max-seconds 420]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from queue_throughput import Bench  # noqa: E402

from core import upkeep  # noqa: E402

#: seconds without a new delivery after which the driver runs the delivery reconciler
STALL_S = 5.0


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    async with Bench(args.db, lease_s=args.lease_s) as bench:
        t0 = time.perf_counter()
        ids = await bench.accept(args.jobs, work_s=args.work_s)
        accept_s = time.perf_counter() - t0
        started = time.perf_counter()
        workers = [await bench.start_worker(args.slots) for _ in range(2)]
        deadline = time.monotonic() + args.max_seconds
        killed_at: float | None = None
        held_at_kill = 0
        restarted = False
        reaped = 0
        reconciled = 0
        last_reap = 0.0
        delivered = 0
        progress_at = time.monotonic()
        while time.monotonic() < deadline:
            counts = await bench.counts()
            if counts.get("delivered", 0) != delivered:
                delivered, progress_at = counts.get("delivered", 0), time.monotonic()
            if delivered >= args.jobs:
                break
            # runs, not deliveries: a delivery is queued behind the whole run backlog, so by
            # the time a third of the jobs are delivered no run is left to be caught holding
            kill_now = killed_at is None and _ended(counts) >= args.jobs // 3
            if kill_now and await _held_by(bench, workers[0].pid):
                # kill it in the middle of its jobs, not between two
                await bench.stop_worker(workers[0], signal.SIGKILL)
                killed_at = time.perf_counter() - started
                # counted after the kill: the rows a dead worker held cannot change any more
                held_at_kill = await _held_by(bench, workers[0].pid)
                print(
                    f"  killed worker 1 (SIGKILL, pid {workers[0].pid}) at {killed_at:.1f}s, "
                    f"holding {held_at_kill} job(s); {_ended(counts)} ended, {delivered} delivered"
                )
            elif (
                killed_at is not None
                and not restarted
                and time.perf_counter() - started > killed_at + 3
            ):
                workers[0] = await bench.start_worker(args.slots)
                restarted = True
                print(f"  restarted worker 1 at {time.perf_counter() - started:.1f}s")
            if time.monotonic() - last_reap > 2:
                reaped += len(await upkeep.reap_expired_leases(bench.deps))
                stalled = time.monotonic() - progress_at > STALL_S
                if killed_at is not None and stalled and _ended(counts) == args.jobs:
                    reconciled += len(await _reconcile_deliveries_now(bench))
                last_reap = time.monotonic()
            await asyncio.sleep(0.01 if kill_now else 0.25)
        elapsed = time.perf_counter() - started
        # settle: let any duplicate delivery that could happen, happen, then count
        await asyncio.sleep(2)
        await asyncio.gather(*(bench.stop_worker(w) for w in list(bench.workers)))
        result = await tally(bench, ids, elapsed, accept_s, reaped, killed_at)
        return {**result, "held_at_kill": held_at_kill, "deliveries_reconciled": reconciled}


async def _reconcile_deliveries_now(bench: Bench) -> list[str]:
    """The workers' delivery reconciler, without waiting out its grace for a first try.

    A worker killed between marking a job ended and queueing its delivery leaves the job
    for the reconciler, which in production waits DELIVERY_GRACE (minutes) first; the
    soak shortens that like the lease, once deliveries stalled (run while they flow, it
    would also count jobs delivered between its listing and its check).
    """
    return await upkeep.reconcile_deliveries(
        bench.deps, now=upkeep.utcnow() + upkeep.DELIVERY_GRACE
    )


def _ended(counts: dict[str, int]) -> int:
    return sum(counts.get(state, 0) for state in ("completed", "failed", "cancelled"))


async def _held_by(bench: Bench, pid: int | None) -> int:
    """Jobs whose lease the worker process `pid` holds (owner `host:pid:random`)."""
    from core.jobs import JobState

    jobs = await bench.deps.store.list_jobs(states=[JobState.PROCESSING], limit=10_000)
    return sum(1 for j in jobs if (j.lease_owner or "").split(":")[-2:-1] == [str(pid)])


async def tally(
    bench: Bench, ids: list[str], elapsed: float, accept_s: float, reaped: int, killed_at: Any
) -> dict[str, Any]:
    redis = bench.deps.redis
    prefix = bench.prefix
    runs = [int(v or 0) for v in await redis.mget([f"{prefix}:bench:runs:{i}" for i in ids])]
    deliveries = [
        int(v or 0) for v in await redis.mget([f"{prefix}:bench:delivered:{i}" for i in ids])
    ]
    counts = await bench.counts()
    for job_id, times in [(i, d) for i, d in zip(ids, deliveries, strict=True) if d != 1][:5]:
        job = await bench.deps.store.get(job_id)
        if job is not None:  # what a job delivered 0 or 2+ times looked like at the end
            print(
                f"  job {job_id}: delivered {times}x, {job.status.value}, attempts {job.attempts}, "
                f"delivery claimed {job.delivery_claimed_at}, delivered_at {job.delivered_at}"
            )
    return {
        "jobs": len(ids),
        "states": {k: v for k, v in counts.items() if k != "delivered"},
        "delivered_once": sum(1 for d in deliveries if d == 1),
        "delivered_twice_or_more": sum(1 for d in deliveries if d > 1),
        "never_delivered": sum(1 for d in deliveries if d == 0),
        "ran_more_than_once": sum(1 for r in runs if r > 1),
        "never_ran": sum(1 for r in runs if r == 0),
        "reaped": reaped,
        "killed_at_s": killed_at,
        "seconds": elapsed,
        "jobs_per_s": counts.get("delivered", 0) / elapsed if elapsed else 0.0,
        "accept_per_s": len(ids) / accept_s if accept_s else 0.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000, help="max 10000")
    parser.add_argument("--slots", type=int, default=8, help="runs per worker process")
    parser.add_argument("--db", default="postgres", choices=["postgres", "sqlite"])
    parser.add_argument("--lease-s", type=int, default=5)
    parser.add_argument("--work-s", type=float, default=0.02, help="stand-in engine time per job")
    parser.add_argument("--max-seconds", type=float, default=420)
    args = parser.parse_args()
    args.jobs = max(10, min(args.jobs, 10_000))
    result = asyncio.run(soak(args))
    print(f"\nsoak ({args.db}, 2 workers x {args.slots} slots); machine cores: {os.cpu_count()}")
    for key, value in result.items():
        print(f"  {key:<24} {value if not isinstance(value, float) else f'{value:.1f}'}")
    ok = (
        result["delivered_once"] == result["jobs"]
        and result["states"].get("completed", 0) == result["jobs"]
    )
    print("  every job ended exactly once:", "YES" if ok else "NO")
    # a soak whose kill never fired (or hit a worker between jobs) tested nothing
    killed = result["held_at_kill"] > 0
    print("  worker 1 killed while holding jobs:", "YES" if killed else "NO")
    return 0 if ok and killed else 1


if __name__ == "__main__":
    sys.exit(main())
