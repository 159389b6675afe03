"""A Telegram video, through real Redis, a real arq worker and the real engine, back as a reply."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.jobs import JobState, Source
from core.worker import build_worker
from tests.media import count_frames, make_clip
from tests.telegram.conftest import HEADERS
from tests.telegram.test_webhook import settle
from tests.telegram.updates import USER_ID, video_update

pytestmark = [pytest.mark.slow, pytest.mark.redis]


async def run_worker_until_idle(deps) -> None:
    worker = build_worker(deps.settings, deps=deps, burst=True, poll_delay=0, handle_signals=False)
    try:
        await worker.async_run()
    finally:
        await worker.close()


async def test_video_message_comes_back_cleaned_exactly_once_despite_redelivery(
    tg_client, fake_api, tmp_path: Path
):
    clip = make_clip(tmp_path / "in.mp4", seconds=1.0, size="160x120", fps=10)
    client, deps = await tg_client(engine_device="cpu")
    fake_api.add_file("vid-e2e", clip.read_bytes())
    update = video_update(9000, file_id="vid-e2e", message_id=77, file_size=clip.stat().st_size)

    # Telegram redelivers when it thinks we were too slow: same update_id, several times
    for _ in range(3):
        response = await client.post("/telegram/webhook", json=update, headers=HEADERS)
        assert response.status == 200
    await settle(client)
    await run_worker_until_idle(deps)
    # ...and again after the job is done, plus the same message under a new update_id
    late = video_update(9001, file_id="vid-e2e", message_id=77, file_size=clip.stat().st_size)
    for body in (update, late):
        assert (await client.post("/telegram/webhook", json=body, headers=HEADERS)).status == 200
    await settle(client)
    await run_worker_until_idle(deps)

    (job,) = await deps.store.list_jobs(source=Source.TELEGRAM)
    assert job.status == JobState.COMPLETED, job.error_message
    assert job.delivered_at is not None
    (sent,) = fake_api.calls_to("sendVideo")
    assert int(sent.params["chat_id"]) == USER_ID
    assert sent.json_param("reply_parameters")["message_id"] == 77
    assert sent.params["supports_streaming"] == "true"
    cleaned = tmp_path / "cleaned.mp4"
    cleaned.write_bytes(sent.files["video"].data)
    assert cleaned.read_bytes()[4:8] == b"ftyp" and cleaned.read_bytes() != clip.read_bytes()
    assert count_frames(cleaned) == count_frames(clip)
    # the status reply was edited to its final words
    status_id = job.reply_to["status_message_id"]
    finals = [
        call.params["text"]
        for call in fake_api.calls_to("editMessageText")
        if int(call.params["message_id"]) == status_id
    ]
    assert finals[-1].startswith("Done")
