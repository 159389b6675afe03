"""`/retry-stuck` on real stores and Redis: what counts as stuck, dry runs, concurrent runs."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime
from typing import Any

import pytest
from arq.constants import job_key_prefix

from core.deps import Deps
from core.jobs import JobState
from core.ops import OpsRequest, handle_command
from core.ops.service import execute, retry_stuck
from core.queue import delivery_id
from tests.ops.conftest import SLACK_ADMIN, Clock
from tests.ops.scenario import Scenario, populate

pytestmark = [pytest.mark.redis]


async def statuses(store: Any, s: Scenario) -> dict[str, str]:
    jobs = {"fresh": s.fresh, "long": s.long, "expired": s.expired, "exhausted": s.exhausted}
    found = {}
    for name, job in jobs.items():
        current = await store.get(job.id)
        found[name] = current.status.value
    return found


async def test_dry_run_lists_stuck_and_expired_jobs_and_changes_nothing(
    deps: Deps, store: Any, clock: Clock, now: datetime
) -> None:
    s = await populate(store, clock, now)
    reply = await execute(
        deps, OpsRequest("cli", "alice", "retry-stuck", "--dry-run"), "text", now=now
    )

    actions = {a["id"]: a for a in reply.data["actions"]}
    assert reply.ok and reply.data["dry_run"] is True
    assert set(actions) == {s.long.id, s.expired.id, s.exhausted.id}
    assert actions[s.long.id]["action"] == "would requeue"
    assert actions[s.long.id]["reason"] == "processing for 15.0 min"
    assert actions[s.expired.id]["action"] == "would requeue"
    assert actions[s.expired.id]["reason"] == "lease expired 7.0 min ago"
    assert actions[s.exhausted.id]["action"] == "would fail"
    assert "Retry stuck (dry run, nothing changed)" in reply.text
    assert "Summary: would fail 1, would requeue 2" in reply.text
    assert await statuses(store, s) == {
        "fresh": "processing",
        "long": "processing",
        "expired": "processing",
        "exhausted": "processing",
    }
    assert await deps.queue.depth() == 0


async def test_retry_stuck_requeues_stuck_jobs_and_fails_those_out_of_attempts(
    deps: Deps, store: Any, clock: Clock, now: datetime
) -> None:
    s = await populate(store, clock, now)
    reply = await execute(deps, OpsRequest("cli", "alice", "retry-stuck", ""), "text", now=now)

    actions = {a["id"]: a["action"] for a in reply.data["actions"]}
    assert actions == {s.long.id: "requeued", s.expired.id: "requeued", s.exhausted.id: "failed"}
    assert await statuses(store, s) == {
        "fresh": "processing",
        "long": "queued",
        "expired": "queued",
        "exhausted": "failed",
    }
    long = await store.get(s.long.id)
    assert long.lease_owner is None and long.attempts == 1
    assert "requeued by an operator" in long.error_message
    assert await deps.queue.holds(s.long.id, 2)
    assert await deps.queue.holds(s.expired.id, 2)
    exhausted = await store.get(s.exhausted.id)
    assert exhausted.error_message.startswith(
        "Stopped: the job was stuck (processing for 20.0 min)"
    )
    assert "used all 1 attempts" in exhausted.error_message
    # the requester of the failed job is told: its delivery is queued
    assert await deps.redis.exists(job_key_prefix + delivery_id(deps.settings, s.exhausted.id, 0))
    assert "Summary: failed 1, requeued 2" in reply.text


async def test_retry_stuck_with_minutes_counts_younger_jobs_as_stuck(
    deps: Deps, store: Any, clock: Clock, now: datetime
) -> None:
    s = await populate(store, clock, now)
    reply = await execute(
        deps, OpsRequest("cli", "alice", "retry-stuck", "1 --dry-run"), "text", now=now
    )
    assert reply.data["stuck_after_s"] == 60
    assert s.fresh.id in {a["id"] for a in reply.data["actions"]}
    assert "jobs processing over 60 s or with an expired lease" in reply.text


async def test_two_retry_stuck_runs_at_once_never_requeue_a_job_twice(
    deps: Deps, store: Any, clock: Clock, now: datetime
) -> None:
    s = await populate(store, clock, now)
    # both runs finish their scan before either moves a job: each sees all three
    both_scanned = asyncio.Barrier(2)
    real_stuck_jobs = store.stuck_jobs

    async def scan_then_wait(started_before: datetime, at: datetime) -> list[Any]:
        found = await real_stuck_jobs(started_before, at)
        await both_scanned.wait()
        return found

    store.stuck_jobs = scan_then_wait
    first, second = await asyncio.gather(retry_stuck(deps, now=now), retry_stuck(deps, now=now))

    assert len(first.actions) == len(second.actions) == 3
    done = Counter((a.job_id, a.action) for r in (first, second) for a in r.actions)
    assert done == Counter(
        {
            (s.long.id, "requeued"): 1,
            (s.long.id, "skipped"): 1,
            (s.expired.id, "requeued"): 1,
            (s.expired.id, "skipped"): 1,
            (s.exhausted.id, "failed"): 1,
            (s.exhausted.id, "skipped"): 1,
        }
    )
    long = await store.get(s.long.id)
    assert long.status == JobState.QUEUED and long.attempts == 1


async def test_a_job_the_worker_finished_meanwhile_is_skipped(
    deps: Deps, store: Any, clock: Clock, now: datetime
) -> None:
    s = await populate(store, clock, now)
    # the worker of `long` completes it between the scan and the move: the owner is gone
    real_stuck_jobs = store.stuck_jobs

    async def stuck_then_finish(started_before: datetime, at: datetime) -> list[Any]:
        found = await real_stuck_jobs(started_before, at)
        await store.move(
            s.long.id, JobState.COMPLETED, expected=[JobState.PROCESSING], owner="worker-2"
        )
        return found

    store.stuck_jobs = stuck_then_finish
    report = await retry_stuck(deps, now=now)
    actions = {a.job_id: a.action for a in report.actions}
    assert actions[s.long.id] == "skipped"
    assert (await store.get(s.long.id)).status == JobState.COMPLETED


async def test_retry_stuck_from_slack_replies_in_mrkdwn(
    deps: Deps, store: Any, clock: Clock, now: datetime
) -> None:
    s = await populate(store, clock, now)
    reply = await handle_command(deps, OpsRequest("slack", SLACK_ADMIN, "/retry-stuck", "dry-run"))
    assert reply.ok
    assert f"`{s.long.id}`" in reply.text
    assert "*would requeue*" in reply.text
