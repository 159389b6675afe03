"""`blanklogo ops ...` prints the same reports, with exit statuses a script can use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.cli import build_parser
from core.jobs import JobState
from core.ops_cli import _run
from core.settings import Settings
from tests.conftest import free_port
from tests.ops.conftest import Clock, StandInEngine, processing_at, queued_at

pytestmark = [pytest.mark.redis]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


async def ops(
    argv: list[str], settings: Settings, store: Any, engine: StandInEngine | None = None
) -> int:
    args = build_parser().parse_args(["ops", *argv])
    return await _run(args, settings, store=store, engine=engine or StandInEngine(), notifiers={})


async def test_ops_queue_prints_the_queue_report(
    settings: Settings, store: Any, clock: Clock, now: datetime, capsys: pytest.CaptureFixture[str]
) -> None:
    await queued_at(store, clock, now - timedelta(minutes=3))
    assert await ops(["queue"], settings, store) == 0
    out = capsys.readouterr().out
    assert "Depth: 1 queued [Normal]" in out
    assert "Oldest waiting: 3.0 min" in out
    (entry,) = await store.audit_log(limit=1)
    assert entry.channel == "cli" and entry.command == "queue" and entry.outcome == "ok"


async def test_ops_retry_stuck_dry_run_then_for_real(
    settings: Settings, store: Any, clock: Clock, now: datetime, capsys: pytest.CaptureFixture[str]
) -> None:
    job = await processing_at(
        store, clock, now - timedelta(minutes=30), now - timedelta(minutes=20)
    )
    assert await ops(["retry-stuck", "--dry-run"], settings, store) == 0
    assert (
        f"- {job.id} webhook, lease expired 15.0 min ago; processing for 20.0 min"
        in capsys.readouterr().out
    )
    assert (await store.get(job.id)).status == JobState.PROCESSING

    assert await ops(["retry-stuck", "15"], settings, store) == 0
    out = capsys.readouterr().out
    assert "jobs processing over 15.0 min or with an expired lease" in out
    assert "requeued" in out
    assert (await store.get(job.id)).status == JobState.QUEUED


async def test_ops_job_json_and_exit_statuses(
    settings: Settings, store: Any, clock: Clock, now: datetime, capsys: pytest.CaptureFixture[str]
) -> None:
    job = await queued_at(store, clock, now)
    assert await ops(["job", job.id, "--json"], settings, store) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "queued"
    assert await ops(["job", "nosuchjob"], settings, store) == 1
    assert "No job with id nosuchjob." in capsys.readouterr().out
    assert await ops(["job"], settings, store) == 2
    assert "job needs exactly one job id" in capsys.readouterr().out
    assert await ops(["cancel", job.id], settings, store) == 0
    assert await ops(["cancel", job.id], settings, store) == 1


async def test_ops_health_exit_status_follows_the_overall_status(
    settings: Settings, store: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # no worker is running here: degraded, exit 1
    assert await ops(["health"], settings, store) == 1
    out = capsys.readouterr().out
    assert out.startswith("Health: DEGRADED")
    assert "no worker heartbeat" in out


def test_blanklogo_ops_runs_as_a_console_command(settings: Settings, tmp_path: Path) -> None:
    done = run_cli(
        ["retry-stuck", "--dry-run"],
        tmp_path,
        REDIS_URL=settings.redis_url or "",
        REDIS_PREFIX=settings.redis_prefix,
    )
    assert done.returncode == 0, done.stderr
    assert "No stuck jobs." in done.stdout


def run_cli(argv: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    values = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "DATA_DIR": str(tmp_path),
        "STORAGE_DIR": str(tmp_path / "storage"),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "core.cli", "ops", *argv],
        cwd=ROOT,
        env=values,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_ops_health_names_an_unreachable_redis_instead_of_failing(tmp_path: Path) -> None:
    done = run_cli(["health"], tmp_path, REDIS_URL=f"redis://127.0.0.1:{free_port()}")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout.startswith("Health: DOWN")
    assert "DOWN redis" in done.stdout and "redis unreachable" in done.stdout
    assert "OK database" in done.stdout


@pytest.mark.postgres
def test_ops_health_names_an_unreachable_database(settings: Settings, tmp_path: Path) -> None:
    done = run_cli(
        ["health"],
        tmp_path,
        REDIS_URL=settings.redis_url or "",
        REDIS_PREFIX=settings.redis_prefix,
        DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/nothing",
    )
    assert done.returncode == 2, done.stderr
    assert "DOWN database" in done.stdout
    assert "the database could not be opened" in done.stdout
    assert "OK redis" in done.stdout


def test_other_ops_commands_say_what_is_unreachable_instead_of_a_traceback(
    tmp_path: Path,
) -> None:
    done = run_cli(["queue"], tmp_path, REDIS_URL=f"redis://127.0.0.1:{free_port()}")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "cannot reach the service's parts" in done.stderr
    assert "Redis" in done.stderr
