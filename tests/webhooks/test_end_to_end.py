"""Issue 2's end-to-end: a clip through the real app, Redis, arq worker and engine, back signed."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from core.deps import Deps
from core.jobs import JobState
from core.worker import build_worker
from tests.media import count_frames, make_clip
from tests.webhooks.conftest import WEBHOOK_SECRET, ApiFactory
from webhooks.signatures import verify

pytestmark = [pytest.mark.slow, pytest.mark.redis]


async def run_worker_until_idle(deps: Deps) -> None:
    worker = build_worker(deps.settings, deps=deps, burst=True, poll_delay=0, handle_signals=False)
    try:
        await worker.async_run()
    finally:
        await worker.close()


class Loopback:
    """A loopback HTTP server: receives callbacks and serves a video for URL jobs."""

    def __init__(self, video: Path) -> None:
        self.video = video
        self.callbacks: list[tuple[dict[str, str], bytes]] = []
        self.server: TestServer | None = None

    async def hook(self, request: web.Request) -> web.Response:
        self.callbacks.append((dict(request.headers), await request.read()))
        return web.Response(status=204)

    async def clip(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(self.video, headers={"Content-Type": "video/mp4"})

    async def moved(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("http://169.254.169.254/latest/meta-data/iam/")

    def url(self, path: str) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}{path}"


@pytest.fixture
async def loopback(tmp_path: Path) -> Any:
    clip = make_clip(tmp_path / "input.mp4", seconds=1.5, size="160x120", fps=10)
    box = Loopback(clip)
    app = web.Application()
    app.router.add_post("/hook", box.hook)
    app.router.add_get("/videos/input.mp4", box.clip)
    app.router.add_get("/videos/moved.mp4", box.moved)
    box.server = TestServer(app, host="127.0.0.1")
    await box.server.start_server()
    yield box
    await box.server.close()


async def _check_result(api: Any, job_id: str, loopback: Loopback, tmp_path: Path) -> None:
    ((headers, body),) = loopback.callbacks
    assert verify(WEBHOOK_SECRET, headers, body, now=time.time()) == f"{job_id}.completed.1"
    event = json.loads(body)
    assert event["type"] == "job.completed"
    assert event["data"]["id"] == job_id and event["data"]["metadata"] == {"ticket": "T-1"}

    status = await api.client.get(f"/v1/jobs/{job_id}", headers=api.bearer())
    view = await status.json()
    assert view["status"] == "completed" and view["progress"] == 100, view
    # what was removed, in the status and in the callback alike ([] when nothing was found)
    assert isinstance(view["marks_removed"], list)
    assert event["data"]["marks_removed"] == view["marks_removed"]

    # the result link redirects to a signed /files/... download of the cleaned MP4
    result = await api.client.get(
        f"/v1/jobs/{job_id}/result", headers=api.bearer(), allow_redirects=False
    )
    assert result.status == 302
    async with aiohttp.ClientSession() as session:
        async with session.get(result.headers["Location"]) as download:
            assert download.status == 200
            cleaned = tmp_path / "cleaned.mp4"
            cleaned.write_bytes(await download.read())
        # the callback's own result_url works as well
        async with session.get(event["data"]["result_url"]) as again:
            assert again.status == 200
    assert cleaned.read_bytes()[4:8] == b"ftyp"
    assert count_frames(cleaned) == count_frames(loopback.video) == 15


async def test_uploaded_clip_comes_back_cleaned_with_a_signed_callback(
    start_api: ApiFactory, loopback: Loopback, tmp_path: Path
) -> None:
    api = await start_api(real_engine=True, engine_device="cpu")
    form = aiohttp.FormData()
    form.add_field("callback_url", loopback.url("/hook"))
    form.add_field("metadata", json.dumps({"ticket": "T-1"}))
    form.add_field(
        "file",
        io.BytesIO(loopback.video.read_bytes()),
        filename="input.mp4",
        content_type="video/mp4",
    )
    response = await api.client.post(
        "/v1/jobs", data=form, headers={**api.bearer(), "Idempotency-Key": "e2e-upload"}
    )
    assert response.status == 202, await response.text()
    job_id = (await response.json())["id"]

    await run_worker_until_idle(api.deps)

    job = await api.deps.store.get(job_id)
    assert job is not None and job.status == JobState.COMPLETED, job and job.error_message
    assert job.delivered_at is not None
    await _check_result(api, job_id, loopback, tmp_path)


async def test_clip_sent_by_url_is_downloaded_cleaned_and_called_back(
    start_api: ApiFactory, loopback: Loopback, tmp_path: Path
) -> None:
    api = await start_api(real_engine=True, engine_device="cpu")
    raw = json.dumps(
        {
            "video_url": loopback.url("/videos/input.mp4"),
            "callback_url": loopback.url("/hook"),
            "metadata": {"ticket": "T-1"},
        }
    ).encode()
    response = await api.client.post(
        "/v1/jobs", data=raw, headers={"Content-Type": "application/json", **api.signed(raw)}
    )
    assert response.status == 202, await response.text()
    job_id = (await response.json())["id"]

    await run_worker_until_idle(api.deps)

    job = await api.deps.store.get(job_id)
    assert job is not None and job.status == JobState.COMPLETED, job and job.error_message
    assert job.requester == "webhook" and job.input_key is not None  # the worker downloaded it
    ((headers, body),) = loopback.callbacks
    assert verify(WEBHOOK_SECRET, headers, body, now=time.time()) == f"{job_id}.completed.1"
    # a signed client reads its result with a signed GET
    result = await api.client.get(
        f"/v1/jobs/{job_id}/result", headers=api.signed(b""), allow_redirects=False
    )
    assert result.status == 302
    async with aiohttp.ClientSession() as session, session.get(result.headers["Location"]) as got:
        cleaned = tmp_path / "from-url.mp4"
        cleaned.write_bytes(await got.read())
    assert count_frames(cleaned) == count_frames(loopback.video)


async def test_cancelled_job_is_never_run_and_its_callback_says_cancelled(
    start_api: ApiFactory, loopback: Loopback
) -> None:
    api = await start_api()  # the stand-in engine fails the test if anything runs it
    status, created = await api.post_json(
        {"video_url": loopback.url("/videos/input.mp4"), "callback_url": loopback.url("/hook")}
    )
    assert status == 202
    cancelled = await api.client.delete(f"/v1/jobs/{created['id']}", headers=api.bearer())
    assert cancelled.status == 200

    await run_worker_until_idle(api.deps)

    job = await api.deps.store.get(created["id"])
    assert job is not None and job.status == JobState.CANCELLED and job.attempts == 0
    ((headers, body),) = loopback.callbacks
    assert verify(WEBHOOK_SECRET, headers, body, now=time.time()) == f"{job.id}.cancelled.0"
    assert json.loads(body)["type"] == "job.cancelled"


async def test_video_url_redirecting_to_cloud_metadata_fails_the_job_without_fetching_it(
    start_api: ApiFactory, loopback: Loopback
) -> None:
    api = await start_api()  # loopback allowed (the test server), metadata never
    status, created = await api.post_json(
        {"video_url": loopback.url("/videos/moved.mp4"), "callback_url": loopback.url("/hook")}
    )
    assert status == 202

    await run_worker_until_idle(api.deps)

    job = await api.deps.store.get(created["id"])
    assert job is not None and job.status == JobState.FAILED
    assert job.attempts == 1 and "link-local" in (job.error_message or "")
    ((_, body),) = loopback.callbacks
    event = json.loads(body)
    assert event["type"] == "job.failed" and event["data"]["error"] == job.error_message
