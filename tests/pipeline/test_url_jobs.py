"""Jobs that arrive as a video_url: the worker downloads them safely, then processes them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp import web

from core.deps import Deps
from core.intake import accept
from core.jobs import JobState
from tests.pipeline.conftest import new_job, run_worker


@pytest.fixture
async def video_site(small_clip: Path) -> AsyncIterator[Callable[[str], str]]:
    """A loopback site: /clip.mp4, /login (an HTML page), /gone (404), /broken (503)."""
    hits: dict[str, int] = {}

    async def clip(request: web.Request) -> web.StreamResponse:
        hits["clip"] = hits.get("clip", 0) + 1
        return web.FileResponse(small_clip, headers={"Content-Type": "video/mp4"})

    async def login(request: web.Request) -> web.Response:
        return web.Response(
            text="<html><body>Please sign in</body></html>", content_type="text/html"
        )

    async def disguised(request: web.Request) -> web.Response:
        return web.Response(
            body=b"<!DOCTYPE html><html>" + b" " * 600, content_type="application/octet-stream"
        )

    async def gone(request: web.Request) -> web.Response:
        return web.Response(status=404)

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=503)

    app = web.Application()
    app.router.add_get("/clip.mp4", clip)
    app.router.add_get("/login", login)
    app.router.add_get("/disguised", disguised)
    app.router.add_get("/gone", gone)
    app.router.add_get("/broken", broken)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield lambda path: f"http://127.0.0.1:{port}{path}"
    finally:
        await runner.cleanup()


async def run_url_job(deps: Deps, url: str) -> object:
    accepted = await accept(deps, new_job(options={"region": "auto", "video_url": url}))
    await run_worker(deps)
    return await deps.store.get(accepted.job.id)


async def test_a_url_job_is_downloaded_into_storage_and_processed(
    deps: Deps, video_site: Callable[[str], str], small_clip: Path
) -> None:
    job = await run_url_job(deps, video_site("/clip.mp4"))

    assert job.status == JobState.COMPLETED  # type: ignore[attr-defined]
    assert job.input_key == f"inputs/{job.id}/source"  # type: ignore[attr-defined]
    assert job.input_size_bytes == small_clip.stat().st_size  # type: ignore[attr-defined]
    assert await deps.storage.exists(job.input_key)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/login", "does not point to a video"),
        ("/disguised", "does not point to a video"),
        ("/gone", "answered HTTP 404"),
    ],
)
async def test_a_url_that_is_not_a_video_fails_at_once(
    deps: Deps, video_site: Callable[[str], str], path: str, message: str
) -> None:
    job = await run_url_job(deps, video_site(path))

    assert job.status == JobState.FAILED and job.attempts == 1  # type: ignore[attr-defined]
    assert message in job.error_message  # type: ignore[attr-defined]
    assert not await deps.storage.exists(f"inputs/{job.id}/source")  # type: ignore[attr-defined]


async def test_a_server_error_is_retried_then_given_up(
    deps: Deps, video_site: Callable[[str], str]
) -> None:
    job = await run_url_job(deps, video_site("/broken"))

    assert job.status == JobState.FAILED and job.attempts == 3  # type: ignore[attr-defined]
    assert job.error_message == "gave up after 3 attempts: the video link answered HTTP 503"  # type: ignore[attr-defined]


async def test_an_oversized_download_is_refused_while_streaming(
    make_settings, redis_url: str, notifier, video_site: Callable[[str], str]
) -> None:
    from tests.pipeline.conftest import build_deps, forget_prefix

    settings = make_settings(redis_url=redis_url, max_upload_mb=0)
    deps = await build_deps(settings, notifier)
    try:
        job = await run_url_job(deps, video_site("/clip.mp4"))
        assert job.status == JobState.FAILED and "limit" in job.error_message  # type: ignore[attr-defined]
    finally:
        await deps.close()
        await forget_prefix(redis_url, settings.redis_prefix)


async def test_a_private_address_is_refused_without_retry(
    make_settings, redis_url: str, notifier
) -> None:
    from tests.pipeline.conftest import build_deps, forget_prefix

    settings = make_settings(redis_url=redis_url, allow_loopback_urls=False)
    deps = await build_deps(settings, notifier)
    try:
        job = await run_url_job(deps, "http://169.254.169.254/latest/meta-data")
        assert job.status == JobState.FAILED and job.attempts == 1  # type: ignore[attr-defined]
    finally:
        await deps.close()
        await forget_prefix(redis_url, settings.redis_prefix)
