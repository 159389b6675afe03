"""The engine crashing or hanging: the job fails or retries within ENGINE_TIMEOUT_S, readably,
and the same worker then finishes the next job."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.deps import Deps
from core.engines import LocalEngine
from core.intake import accept
from core.jobs import JobState
from core.processing import Policy
from core.settings import Settings
from core.storage import open_storage
from tests.pipeline.conftest import build_deps, new_job, store_clip
from tests.pipeline.fakes import CountingNotifier
from tests.reliability.helpers import run_worker_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

STAND_IN = "tests.pipeline.stand_in_engine"
TIMEOUT_S = 2
POLICY = Policy(lease_s=5, heartbeat_s=0.2, retry_base_s=0.05)


class RoutedEngine(LocalEngine):
    """The real LocalEngine child machinery; the stand-in named by the job's `fault` option."""

    async def process(self, job, progress):  # type: ignore[no-untyped-def]
        self.target = f"{STAND_IN}:{job.options.get('fault', 'copy')}"
        return await super().process(job, progress)


@pytest.fixture
async def deps(pg_settings: Settings) -> AsyncIterator[Deps]:
    settings = pg_settings.model_copy(update={"engine_timeout_s": TIMEOUT_S})
    d = await build_deps(
        settings, CountingNotifier(), engine=RoutedEngine(settings, open_storage(settings))
    )
    yield d
    await d.close()


async def _ended(deps: Deps, job_id: str) -> bool:
    job = await deps.store.get(job_id)
    return job is not None and job.is_terminal


@pytest.mark.parametrize(
    ("fault", "words"),
    [("hang", f"longer than {TIMEOUT_S} s"), ("crash", "killed by signal 9")],
)
async def test_engine_fault_fails_the_job_readably_and_the_worker_goes_on(
    deps: Deps, small_clip: Path, fault: str, words: str
) -> None:
    bad = await accept(
        deps,
        await store_clip(
            deps, new_job(options={"region": "auto", "fault": fault}, max_attempts=2), small_clip
        ),
    )
    good = await accept(deps, await store_clip(deps, new_job(), small_clip))
    started = time.monotonic()

    async def both_ended() -> bool:
        return await _ended(deps, bad.job.id) and await _ended(deps, good.job.id)

    await run_worker_until(deps, both_ended, 30, policy=POLICY)
    elapsed = time.monotonic() - started

    failed = await deps.store.get(bad.job.id)
    assert failed is not None and failed.status == JobState.FAILED
    assert failed.attempts == 2, "a temporary engine error is retried up to max_attempts"
    assert words in (failed.error_message or ""), failed.error_message
    assert "Traceback" not in (failed.error_message or "")
    # two tries, each bounded by the engine timeout (plus child start-up), not by the lease
    assert elapsed < 2 * (TIMEOUT_S + 6)
    finished = await deps.store.get(good.job.id)
    assert finished is not None and finished.status == JobState.COMPLETED
    assert finished.output_key and await deps.storage.exists(finished.output_key)
