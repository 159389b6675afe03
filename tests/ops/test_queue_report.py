"""`/queue` on real stores (SQLite and PostgreSQL) and real Redis: every figure and marking."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from core.deps import Deps
from core.health import gather_queue_report, worker_heartbeat_key
from core.ops import OpsRequest
from core.ops.service import execute
from tests.ops.conftest import Clock
from tests.ops.scenario import populate

pytestmark = [pytest.mark.redis]


async def test_queue_report_gives_every_figure_with_its_runbook_level(
    deps: Deps, store: Any, clock: Clock, now: datetime
) -> None:
    s = await populate(store, clock, now)
    await deps.redis.set(
        worker_heartbeat_key(deps.settings, "w1"),
        json.dumps({"worker_id": "w1", "seen_at": now.timestamp(), "memory_pct": 92.5}),
        ex=30,
    )
    await deps.queue.enqueue_run(s.oldest_queued.id, 1)

    report = (await gather_queue_report(deps, now)).to_dict()

    assert report["depth"] == 7
    assert report["depth_level"] == "Warning"
    assert report["arq_depth"] == 1
    assert report["in_progress"] == 4
    assert report["by_state"] == {
        "queued": 7,
        "processing": 4,
        "completed": 16,
        "failed": 1,
        "cancelled": 1,
    }
    assert report["by_source"]["slack"] == {"queued": 1}
    assert report["by_source"]["telegram"] == {"queued": 2, "cancelled": 1}
    assert report["by_source"]["webhook"] == {
        "queued": 4,
        "processing": 4,
        "completed": 16,
        "failed": 1,
    }
    assert report["oldest_queued_id"] == s.oldest_queued.id
    assert report["oldest_queued_age_s"] == 1800.0

    rows = {row["id"]: row for row in report["processing"]}
    assert [row["id"] for row in report["processing"]] == [
        s.exhausted.id,
        s.long.id,
        s.expired.id,
        s.fresh.id,
    ]
    assert rows[s.fresh.id]["age_s"] == 120.0
    assert rows[s.fresh.id]["progress"] == 40
    assert rows[s.fresh.id]["step"] == "removing"
    assert rows[s.long.id]["age_s"] == 900.0
    assert rows[s.long.id]["progress"] == 70
    assert rows[s.expired.id]["lease_left_s"] == -420.0

    hour = report["windows"]["1h"]
    assert (hour["completed"], hour["failed"]) == (5, 1)
    assert hour["completion_p50_s"] == 100.0
    assert hour["completion_p50_level"] == "Normal"
    assert hour["completion_p95_s"] == 700.0
    assert hour["completion_p95_level"] == "Critical"
    assert hour["error_rate_pct"] == pytest.approx(16.67, abs=0.01)
    assert hour["error_rate_level"] == "Critical"

    day = report["windows"]["24h"]
    assert (day["completed"], day["failed"]) == (15, 1)
    assert day["completion_p50_s"] == 30.0
    assert day["completion_p50_level"] == "Normal"
    assert day["completion_p95_s"] == 700.0
    assert day["error_rate_pct"] == 6.25
    assert day["error_rate_level"] == "Warning"

    assert report["modal_cold_start_s"] == 75.0
    assert report["modal_cold_start_level"] == "Warning"
    assert report["worker_memory_pct"] == 92.5
    assert report["worker_memory_level"] == "Critical"
    # the runbook's "Modal out of memory" symptom: the failures' own reasons
    assert report["recent_failures"] == [
        {
            "id": s.failed.id,
            "source": "webhook",
            "ended_ago_s": 2670.0,
            "error": "CUDA out of memory",
        }
    ]


async def test_queue_report_reads_as_words_in_each_channel(
    deps: Deps, store: Any, clock: Clock, now: datetime
) -> None:
    s = await populate(store, clock, now)
    request = OpsRequest("cli", "alice", "queue", "")

    text = (await execute(deps, request, "text", now=now)).text
    assert "Depth: 7 queued [Warning]" in text
    assert f"Oldest waiting: 30.0 min (job {s.oldest_queued.id})" in text
    assert "queued 7 · processing 4 · completed 16 · failed 1 · cancelled 1" in text
    assert f"{s.fresh.id} webhook for 2.0 min, 40% removing (attempt 1/3, lease" in text
    assert "Last 1h: 5 completed, 1 failed" in text
    assert "completion time p50 1.7 min [Normal] · p95 11.7 min [Critical]" in text
    assert "error rate 16.7 % [Critical]" in text
    assert "error rate 6.2 % [Warning]" in text
    assert "webhook: queued 4, processing 4, completed 16, failed 1" in text
    assert "Modal cold start: 75 s [Warning]" in text
    assert "completion Normal under 2, Warning 2-10, Critical over 10 min" in text
    assert "Worker memory: n/a" in text
    assert "Latest failures (24 h):" in text
    assert f"{s.failed.id} webhook, 44.5 min ago: CUDA out of memory" in text

    slack = (await handle_slack(deps, "queue")).text
    assert "*Queue at" in slack
    assert ":large_yellow_circle: Warning" in slack
    assert "Critical over 50" in slack

    telegram = (await execute(deps, OpsRequest("telegram", "4242", "queue"), "telegram")).text
    assert "🟡 Warning" in telegram
    assert not set("<>&") & set(telegram)


async def test_empty_queue_says_none_and_na_instead_of_inventing_figures(
    deps: Deps, now: datetime
) -> None:
    report = await gather_queue_report(deps, now)
    assert report.depth == 0
    assert report.depth_level.value == "Normal"
    assert report.oldest_queued_age_s is None
    assert all(w.error_rate_pct is None and w.p50_s is None for w in report.windows)
    text = (await execute(deps, OpsRequest("cli", "alice", "queue"), "text", now=now)).text
    assert "Oldest waiting: none" in text
    assert "no finished jobs: completion time and error rate n/a" in text
    assert "Modal cold start: n/a" in text


async def handle_slack(deps: Deps, command: str, args: str = "") -> Any:
    from core.ops import handle_command

    return await handle_command(deps, OpsRequest("slack", "UADMIN", command, args))
