"""POST/GET/DELETE /v1/jobs through the real app, with real Redis, SQLite and local storage."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from core.errors import StoreError
from core.jobs import JobState, Source
from tests.media import make_m2ts
from tests.webhooks.conftest import OTHER_KEY, Api, ApiFactory

pytestmark = pytest.mark.redis

VIDEO_URL = "http://93.184.216.34/clip.mp4"  # a public literal address: no DNS needed


async def _all_jobs(api: Api) -> list[Any]:
    return await api.deps.store.list_jobs(limit=1000)


def _stored_files(api: Api) -> list[Path]:
    root = Path(api.deps.settings.storage_dir)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _upload(content: bytes, filename: str = "clip.mp4", **fields: str) -> aiohttp.FormData:
    form = aiohttp.FormData(default_to_multipart=True)
    for name, value in fields.items():
        form.add_field(name, value)
    # a file object, not bytes: aiohttp warns about large raw bytes bodies
    form.add_field("file", io.BytesIO(content), filename=filename, content_type="video/mp4")
    return form


# ---------------------------------------------------------------- JSON intake


async def test_json_job_is_accepted_queued_and_filed_under_the_api_key(api: Api) -> None:
    status, body = await api.post_json(
        {
            "video_url": VIDEO_URL,
            "callback_url": "http://93.184.216.34/hook",
            "region": "bottom-right",
            "metadata": {"order": 42},
        }
    )
    assert status == 202, body
    assert body["status"] == "queued"
    assert body["position"] >= 1
    assert body["status_url"] == f"{api.base_url}/v1/jobs/{body['id']}"
    assert body["result_url"] == f"{api.base_url}/v1/jobs/{body['id']}/result"
    job = await api.deps.store.get(body["id"])
    assert job is not None and job.source == Source.WEBHOOK
    assert job.requester.startswith("key:") and "test-api-key" not in job.requester
    assert job.options == {"region": "bottom-right", "video_url": VIDEO_URL}
    assert job.reply_to == {"callback_url": "http://93.184.216.34/hook", "metadata": {"order": 42}}
    assert await api.deps.queue.holds(job.id, 1)


async def test_missing_credentials_get_401_and_nothing_is_stored(api: Api) -> None:
    response = await api.client.post("/v1/jobs", json={"video_url": VIDEO_URL})
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "unauthorized"
    assert "Bearer" in response.headers["WWW-Authenticate"]
    assert await _all_jobs(api) == []


@pytest.mark.parametrize(
    "authorization",
    ["Bearer wrong-key", "Bearer ", "Basic dXNlcjpwdw==", "test-api-key-0123456789"],
)
async def test_bad_bearer_credentials_get_401(api: Api, authorization: str) -> None:
    status, body = await api.post_json({"video_url": VIDEO_URL}, {"Authorization": authorization})
    assert status == 401 and body["error"]["code"] == "unauthorized"
    assert await _all_jobs(api) == []


async def test_signed_request_is_accepted_as_the_webhook_client(api: Api) -> None:
    raw = json.dumps({"video_url": VIDEO_URL}).encode()
    response = await api.client.post(
        "/v1/jobs", data=raw, headers={"Content-Type": "application/json", **api.signed(raw)}
    )
    assert response.status == 202, await response.text()
    job = await api.deps.store.get((await response.json())["id"])
    assert job is not None and job.requester == "webhook"


@pytest.mark.parametrize(
    "tamper",
    ["body", "signature", "old", "future", "no_timestamp", "other_secret"],
)
async def test_badly_signed_requests_get_401_and_nothing_is_stored(api: Api, tamper: str) -> None:
    raw = json.dumps({"video_url": VIDEO_URL}).encode()
    now = int(time.time())
    headers = api.signed(raw)
    if tamper == "body":
        raw = json.dumps({"video_url": VIDEO_URL + "?x"}).encode()
    elif tamper == "signature":
        headers["webhook-signature"] = "v1,AAAA" + headers["webhook-signature"][7:]
    elif tamper == "old":
        headers = api.signed(raw, timestamp=now - 301)
    elif tamper == "future":
        headers = api.signed(raw, timestamp=now + 301)
    elif tamper == "no_timestamp":
        del headers["webhook-timestamp"]
    elif tamper == "other_secret":
        from webhooks.signatures import signed_headers

        headers = signed_headers("whsec_b3RoZXIgc2VjcmV0", "msg_1", now, raw)
    response = await api.client.post(
        "/v1/jobs", data=raw, headers={"Content-Type": "application/json", **headers}
    )
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "unauthorized"
    assert await _all_jobs(api) == []


async def test_replayed_signed_request_returns_the_first_job(api: Api) -> None:
    raw = json.dumps({"video_url": VIDEO_URL}).encode()
    headers = {"Content-Type": "application/json", **api.signed(raw, msg_id="msg_replay")}
    first = await api.client.post("/v1/jobs", data=raw, headers=headers)
    again = await api.client.post("/v1/jobs", data=raw, headers=headers)
    assert first.status == 202 and again.status == 200
    assert (await first.json())["id"] == (await again.json())["id"]
    assert (await again.json())["position"] == 1
    assert len(await _all_jobs(api)) == 1


async def test_replayed_webhook_id_is_found_by_the_store_when_redis_forgot_it(api: Api) -> None:
    raw = json.dumps({"video_url": VIDEO_URL}).encode()
    first = await api.client.post(
        "/v1/jobs",
        data=raw,
        headers={"Content-Type": "application/json", **api.signed(raw, msg_id="msg_forgot")},
    )
    prefix = api.deps.settings.redis_prefix
    await api.deps.redis.delete(f"{prefix}:webhooks:seen:msg_forgot")
    again = await api.client.post(
        "/v1/jobs",
        data=raw,
        headers={"Content-Type": "application/json", **api.signed(raw, msg_id="msg_forgot")},
    )
    assert again.status == 200
    assert (await first.json())["id"] == (await again.json())["id"]
    assert len(await _all_jobs(api)) == 1


async def test_repeated_idempotency_key_returns_the_first_job_never_a_second(api: Api) -> None:
    headers = {**api.bearer(), "Idempotency-Key": "order-42"}
    status1, first = await api.post_json({"video_url": VIDEO_URL}, headers)
    status2, second = await api.post_json({"video_url": VIDEO_URL}, headers)
    assert (status1, status2) == (202, 200)
    assert first["id"] == second["id"]
    assert len(await _all_jobs(api)) == 1


@pytest.mark.parametrize("key", ["", "has space", "x" * 201, "caf\u00e9"])
async def test_malformed_idempotency_key_gets_400_before_anything_is_stored(
    api: Api, key: str
) -> None:
    status, body = await api.post_json(
        {"video_url": VIDEO_URL}, {**api.bearer(), "Idempotency-Key": key}
    )
    assert status == 400 and body["error"]["code"] == "invalid_header"
    assert await _all_jobs(api) == []


async def test_same_idempotency_key_from_two_clients_makes_two_jobs(api: Api) -> None:
    _, mine = await api.post_json(
        {"video_url": VIDEO_URL}, {**api.bearer(), "Idempotency-Key": "k1"}
    )
    _, theirs = await api.post_json(
        {"video_url": VIDEO_URL}, {**api.bearer(OTHER_KEY), "Idempotency-Key": "k1"}
    )
    assert mine["id"] != theirs["id"]


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "malformed_json"),
        (b"\xff\xfe", "malformed_json"),
        (b"[1, 2]", "invalid_body"),
        (b"{}", "missing_field"),
        (b'{"video_url": ""}', "missing_field"),
        (b'{"video_url": 12}', "invalid_field"),
        (b'{"video_url": "http://93.184.216.34/a.mp4", "region": "middle"}', "bad_region"),
        (b'{"video_url": "http://93.184.216.34/a.mp4", "region": 5}', "invalid_field"),
        (b'{"video_url": "http://93.184.216.34/a.mp4", "metadata": [1]}', "invalid_field"),
        (b'{"video_url": "ftp://93.184.216.34/a.mp4"}', "unsafe_url"),
        (b'{"video_url": "not a url"}', "unsafe_url"),
    ],
)
async def test_bad_json_bodies_get_400_with_a_stable_code(api: Api, body: bytes, code: str) -> None:
    response = await api.client.post(
        "/v1/jobs", data=body, headers={"Content-Type": "application/json", **api.bearer()}
    )
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == code and error["message"]
    assert await _all_jobs(api) == []


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
async def test_wrong_content_type_gets_415(api: Api, content_type: str) -> None:
    headers = {**api.bearer()}
    if content_type:
        headers["Content-Type"] = content_type
    response = await api.client.post("/v1/jobs", data=b"video_url=x", headers=headers)
    assert response.status == 415
    assert (await response.json())["error"]["code"] == "unsupported_media_type"


async def test_oversized_json_body_gets_413(api: Api) -> None:
    payload = {"video_url": VIDEO_URL, "metadata": {"pad": "x" * 100_000}}
    status, body = await api.post_json(payload)
    assert status == 413 and body["error"]["code"] == "too_large"


UNSAFE_URLS = [
    "http://127.0.0.1/v.mp4",
    "http://10.1.2.3/v.mp4",
    "http://172.16.5.4/v.mp4",
    "http://192.168.1.10/v.mp4",
    "http://100.64.0.1/v.mp4",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/v.mp4",
    "http://[::ffff:127.0.0.1]/v.mp4",
    "http://[fe80::1]/v.mp4",
    "http://[fd00::1]/v.mp4",
    "http://0.0.0.0/v.mp4",
    "http://224.0.0.1/v.mp4",
    "http://2130706433/v.mp4",
    "http://0177.0.0.1/v.mp4",
    "http://0x7f.1/v.mp4",
    "http://localhost/v.mp4",
    "http://localhost:8080/v.mp4",
    "http://user:pw@93.184.216.34/v.mp4",
    "file:///etc/passwd",
    "gopher://93.184.216.34/",
]


@pytest.mark.parametrize("url", UNSAFE_URLS)
async def test_unsafe_video_url_gets_400_unsafe_url(start_api: ApiFactory, url: str) -> None:
    api = await start_api(allow_loopback_urls=False)
    status, body = await api.post_json({"video_url": url})
    assert status == 400, body
    assert body["error"]["code"] == "unsafe_url"
    assert await _all_jobs(api) == []


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/hook", "http://[::ffff:10.0.0.1]/hook", "http://localhost/hook"]
)
async def test_unsafe_callback_url_gets_400_unsafe_url(start_api: ApiFactory, url: str) -> None:
    api = await start_api(allow_loopback_urls=False)
    status, body = await api.post_json({"video_url": VIDEO_URL, "callback_url": url})
    assert status == 400 and body["error"]["code"] == "unsafe_url"
    assert await _all_jobs(api) == []


async def test_dns_outage_answers_503_try_again(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    async def dns_down(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_AGAIN, "temporary failure in name resolution")

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", dns_down)
    status, body = await api.post_json({"video_url": "https://videos.example.com/a.mp4"})
    assert status == 503 and body["error"]["code"] == "dns_unavailable"
    assert await _all_jobs(api) == []


async def test_loopback_is_refused_by_default_and_allowed_only_by_the_setting(
    start_api: ApiFactory,
) -> None:
    api = await start_api(allow_loopback_urls=True)
    ok, _ = await api.post_json({"video_url": "http://localhost:9/v.mp4"})
    private, _ = await api.post_json({"video_url": "http://10.0.0.1/v.mp4"})
    metadata, _ = await api.post_json({"video_url": "http://169.254.169.254/"})
    assert (ok, private, metadata) == (202, 400, 400)


# ---------------------------------------------------------------- uploads


async def test_upload_is_streamed_to_storage_and_queued(api: Api, small_clip: Path) -> None:
    content = small_clip.read_bytes()
    response = await api.client.post(
        "/v1/jobs",
        data=_upload(content, filename="../my clip.mp4", region="10,10,40,20", metadata='{"a": 1}'),
        headers=api.bearer(),
    )
    assert response.status == 202, await response.text()
    job = await api.deps.store.get((await response.json())["id"])
    assert job is not None
    assert job.input_key == f"inputs/{job.id}/my_clip.mp4"
    assert job.input_size_bytes == len(content)
    assert job.options == {"region": "10,10,40,20"}
    assert job.reply_to == {"callback_url": None, "metadata": {"a": 1}}
    assert [p.read_bytes() for p in _stored_files(api)] == [content]


async def test_a_camcorders_mts_upload_is_taken(api: Api, small_clip: Path, tmp_path: Path) -> None:
    """AVCHD camcorders write M2TS: transport-stream packets behind a 4-byte clock each."""
    mts = make_m2ts(small_clip, tmp_path / "00001.MTS")
    response = await api.client.post(
        "/v1/jobs", data=_upload(mts.read_bytes(), filename=mts.name), headers=api.bearer()
    )
    assert response.status == 202, await response.text()
    assert [p.read_bytes() for p in _stored_files(api)] == [mts.read_bytes()]


async def test_upload_that_is_not_a_video_gets_422_and_nothing_is_stored(api: Api) -> None:
    html = b"<!DOCTYPE html><html><body>Please log in</body></html>" * 20
    response = await api.client.post(
        "/v1/jobs", data=_upload(html, filename="video.mp4"), headers=api.bearer()
    )
    assert response.status == 422
    assert (await response.json())["error"]["code"] == "not_a_video"
    assert _stored_files(api) == [] and await _all_jobs(api) == []


async def test_empty_upload_gets_422(api: Api) -> None:
    response = await api.client.post("/v1/jobs", data=_upload(b""), headers=api.bearer())
    assert response.status == 422
    assert (await response.json())["error"]["code"] == "not_a_video"


async def test_multipart_without_a_file_gets_400(api: Api) -> None:
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("region", "auto")
    form.add_field("other", "x")
    response = await api.client.post("/v1/jobs", data=form, headers=api.bearer())
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "missing_field"


async def test_broken_multipart_body_gets_400(api: Api) -> None:
    response = await api.client.post(
        "/v1/jobs",
        data=b"this is not multipart at all",
        headers={**api.bearer(), "Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "invalid_body"


async def test_multipart_without_a_boundary_gets_400(api: Api) -> None:
    response = await api.client.post(
        "/v1/jobs",
        data=b'{"video_url": "http://93.184.216.34/a.mp4"}',
        headers={**api.bearer(), "Content-Type": "multipart/form-data"},
    )
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "invalid_body"


async def test_multipart_part_with_broken_headers_gets_400(api: Api) -> None:
    body = b'--b\r\nContent-Disposition: form-data; name="\xc2\xb3\x1e"\r\n\r\nx\r\n--b--\r\n'
    response = await api.client.post(
        "/v1/jobs",
        data=body,
        headers={**api.bearer(), "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "invalid_body"


def _fake_mp4(size: int) -> bytes:
    head = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
    return head + b"\x00" * (size - len(head))


async def test_upload_over_max_upload_mb_gets_413_from_content_length(
    start_api: ApiFactory,
) -> None:
    api = await start_api(max_upload_mb=1)
    response = await api.client.post(
        "/v1/jobs", data=_upload(_fake_mp4(3 * 1024 * 1024)), headers=api.bearer()
    )
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "too_large"
    assert _stored_files(api) == [] and await _all_jobs(api) == []


async def test_upload_over_max_upload_mb_gets_413_while_streaming(start_api: ApiFactory) -> None:
    api = await start_api(max_upload_mb=1)
    boundary = "blanklogoboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()

    async def body() -> Any:  # chunked: no Content-Length, so only streaming can catch it
        yield head
        video = _fake_mp4(1024 * 1024 + 300_000)
        for start in range(0, len(video), 65536):
            yield video[start : start + 65536]
        yield f"\r\n--{boundary}--\r\n".encode()

    response = await api.client.post(
        "/v1/jobs",
        data=body(),
        headers={**api.bearer(), "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "too_large"
    assert _stored_files(api) == [] and await _all_jobs(api) == []


async def test_upload_just_under_the_limit_is_accepted(start_api: ApiFactory) -> None:
    api = await start_api(max_upload_mb=1)
    response = await api.client.post(
        "/v1/jobs", data=_upload(_fake_mp4(1024 * 1024 - 10)), headers=api.bearer()
    )
    assert response.status == 202


async def test_signed_upload_is_verified_while_it_streams(api: Api, small_clip: Path) -> None:
    form = _upload(small_clip.read_bytes(), region="auto")
    payload = form()
    raw = b"".join([chunk async for chunk in _iter_payload(payload)])
    headers = {"Content-Type": payload.content_type, **api.signed(raw)}
    response = await api.client.post("/v1/jobs", data=raw, headers=headers)
    assert response.status == 202, await response.text()
    job = await api.deps.store.get((await response.json())["id"])
    assert job is not None and job.requester == "webhook"


async def test_badly_signed_upload_gets_401_and_nothing_is_kept(api: Api, small_clip: Path) -> None:
    payload = _upload(small_clip.read_bytes())()
    raw = b"".join([chunk async for chunk in _iter_payload(payload)])
    headers = {"Content-Type": payload.content_type, **api.signed(raw + b"tampered")}
    response = await api.client.post("/v1/jobs", data=raw, headers=headers)
    assert response.status == 401
    assert _stored_files(api) == [] and await _all_jobs(api) == []


async def _iter_payload(payload: Any) -> Any:
    class _Sink:
        def __init__(self) -> None:
            self.parts: list[bytes] = []

        async def write(self, data: bytes) -> None:
            self.parts.append(bytes(data))

    sink = _Sink()
    await payload.write(sink)
    for part in sink.parts:
        yield part


async def test_database_failure_answers_503_and_removes_the_upload(
    api: Api, small_clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken_create(new: Any) -> Any:
        raise StoreError("connection refused to db.internal:5432")

    monkeypatch.setattr(api.deps.store, "create", broken_create)
    response = await api.client.post(
        "/v1/jobs", data=_upload(small_clip.read_bytes()), headers=api.bearer()
    )
    assert response.status == 503
    error = (await response.json())["error"]
    assert error["code"] == "database_unavailable"
    assert "try again" in error["message"] and "db.internal" not in error["message"]
    assert _stored_files(api) == []


# ---------------------------------------------------------------- status, result, cancel


async def test_job_status_is_visible_to_its_client_only(api: Api) -> None:
    _, created = await api.post_json({"video_url": VIDEO_URL, "metadata": {"k": "v"}})
    mine = await api.client.get(f"/v1/jobs/{created['id']}", headers=api.bearer())
    theirs = await api.client.get(f"/v1/jobs/{created['id']}", headers=api.bearer(OTHER_KEY))
    unknown = await api.client.get("/v1/jobs/0123456789abcdef", headers=api.bearer())
    assert (mine.status, theirs.status, unknown.status) == (200, 404, 404)
    view = await mine.json()
    assert view["status"] == "queued" and view["progress"] == 0 and view["attempts"] == 0
    assert view["metadata"] == {"k": "v"} and view["error"] is None
    assert set(view["timings"]) >= {"queued_ms", "processing_ms", "total_ms"}
    assert (await unknown.json())["error"]["code"] == "not_found"


async def test_status_needs_credentials(api: Api) -> None:
    _, created = await api.post_json({"video_url": VIDEO_URL})
    response = await api.client.get(f"/v1/jobs/{created['id']}")
    assert response.status == 401


async def test_signed_client_can_read_its_job_with_a_signed_get(api: Api) -> None:
    raw = json.dumps({"video_url": VIDEO_URL}).encode()
    created = await api.client.post(
        "/v1/jobs", data=raw, headers={"Content-Type": "application/json", **api.signed(raw)}
    )
    job_id = (await created.json())["id"]
    response = await api.client.get(f"/v1/jobs/{job_id}", headers=api.signed(b""))
    assert response.status == 200
    assert (await response.json())["id"] == job_id


async def test_result_of_an_unfinished_job_is_409(api: Api) -> None:
    _, created = await api.post_json({"video_url": VIDEO_URL})
    response = await api.client.get(f"/v1/jobs/{created['id']}/result", headers=api.bearer())
    assert response.status == 409
    assert (await response.json())["error"]["code"] == "not_finished"


async def test_result_of_a_completed_job_redirects_to_a_signed_download(
    api: Api, small_clip: Path
) -> None:
    _, created = await api.post_json({"video_url": VIDEO_URL})
    job_id = created["id"]
    store, storage = api.deps.store, api.deps.storage
    await storage.put_file(f"outputs/{job_id}.mp4", small_clip)
    assert await store.claim(job_id, "test-worker", 60) is not None
    await store.move(
        job_id, JobState.COMPLETED, owner="test-worker", output_key=f"outputs/{job_id}.mp4"
    )
    response = await api.client.get(
        f"/v1/jobs/{job_id}/result", headers=api.bearer(), allow_redirects=False
    )
    assert response.status == 302
    location = response.headers["Location"]
    assert location.startswith(f"{api.base_url}/files/") and "signature=" in location
    async with aiohttp.ClientSession() as session, session.get(location) as download:
        assert download.status == 200
        assert await download.read() == small_clip.read_bytes()


async def test_result_of_a_failed_job_is_409_with_its_error(api: Api) -> None:
    _, created = await api.post_json({"video_url": VIDEO_URL})
    job_id = created["id"]
    await api.deps.store.claim(job_id, "w", 60)
    await api.deps.store.move(job_id, JobState.FAILED, error_message="the file is not a video")
    response = await api.client.get(f"/v1/jobs/{job_id}/result", headers=api.bearer())
    assert response.status == 409
    error = (await response.json())["error"]
    assert error == {"code": "job_failed", "message": "the file is not a video"}
    missing = await api.client.get("/v1/jobs/nope/result", headers=api.bearer())
    assert missing.status == 404


async def test_cancel_a_queued_job_then_cancelling_again_is_409(api: Api) -> None:
    _, created = await api.post_json({"video_url": VIDEO_URL})
    first = await api.client.delete(f"/v1/jobs/{created['id']}", headers=api.bearer())
    again = await api.client.delete(f"/v1/jobs/{created['id']}", headers=api.bearer())
    assert first.status == 200 and (await first.json())["status"] == "cancelled"
    assert again.status == 409 and (await again.json())["error"]["code"] == "already_ended"
    job = await api.deps.store.get(created["id"])
    assert job is not None and job.status == JobState.CANCELLED


async def test_another_client_cannot_cancel_my_job(api: Api) -> None:
    _, created = await api.post_json({"video_url": VIDEO_URL})
    response = await api.client.delete(f"/v1/jobs/{created['id']}", headers=api.bearer(OTHER_KEY))
    assert response.status == 404
    job = await api.deps.store.get(created["id"])
    assert job is not None and job.status == JobState.QUEUED


# ---------------------------------------------------------------- open mode, errors


async def test_without_credentials_configured_only_dev_loopback_callers_get_in(
    start_api: ApiFactory,
) -> None:
    api = await start_api(api_keys="", webhook_secret=None, allow_loopback_urls=True)
    response = await api.client.post("/v1/jobs", json={"video_url": VIDEO_URL})
    assert response.status == 202
    job = await api.deps.store.get((await response.json())["id"])
    assert job is not None and job.requester == "anonymous"


async def test_without_credentials_configured_the_api_is_closed_outside_dev(
    start_api: ApiFactory,
) -> None:
    api = await start_api(api_keys="", webhook_secret=None, allow_loopback_urls=False)
    response = await api.client.post("/v1/jobs", json={"video_url": VIDEO_URL})
    assert response.status == 401
    assert "API_KEYS" in (await response.json())["error"]["message"]


async def test_unknown_routes_and_methods_get_json_errors(api: Api) -> None:
    missing = await api.client.get("/v2/nothing")
    wrong = await api.client.put("/v1/jobs", headers=api.bearer())
    assert missing.status == 404 and (await missing.json())["error"]["code"] == "not_found"
    assert wrong.status == 405
    assert (await wrong.json())["error"]["code"] == "method_not_allowed"
    assert "POST" in wrong.headers["Allow"]


async def test_secrets_and_signed_links_never_reach_the_logs(
    api: Api, small_clip: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.webhooks.conftest import API_KEY, WEBHOOK_SECRET

    caplog.set_level(logging.DEBUG)
    await api.post_json({"video_url": VIDEO_URL}, api.bearer("wrong-" + API_KEY))
    raw = json.dumps({"video_url": VIDEO_URL}).encode()
    await api.client.post(
        "/v1/jobs", data=raw, headers={"Content-Type": "application/json", **api.signed(raw)}
    )
    _, created = await api.post_json({"video_url": VIDEO_URL})
    job_id = created["id"]
    await api.deps.storage.put_file(f"outputs/{job_id}.mp4", small_clip)
    await api.deps.store.claim(job_id, "w", 60)
    await api.deps.store.move(job_id, JobState.COMPLETED, output_key=f"outputs/{job_id}.mp4")
    result = await api.client.get(
        f"/v1/jobs/{job_id}/result", headers=api.bearer(), allow_redirects=False
    )
    signature = result.headers["Location"].split("signature=")[1]
    logged = caplog.text
    for secret in (API_KEY, WEBHOOK_SECRET, WEBHOOK_SECRET.removeprefix("whsec_"), signature):
        assert secret not in logged
