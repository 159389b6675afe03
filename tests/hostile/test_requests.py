"""Hostile requests at the intake API: nesting bombs, odd encodings, oversized and chunked
bodies, huge headers, replays in parallel, odd paths and methods. No 5xx, nothing stored,
and the server still answers afterwards."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.webhooks.conftest import Api

pytestmark = pytest.mark.redis

VIDEO_URL = "http://93.184.216.34/clip.mp4"


async def _post(
    api: Api, body: Any, headers: dict[str, str] | None = None, *, auth: bool = True
) -> tuple[int, Any]:
    response = await api.client.post(
        "/v1/jobs",
        data=body,
        headers={
            "Content-Type": "application/json",
            **(api.bearer() if auth else {}),
            **(headers or {}),
        },
    )
    text = await response.text()
    try:
        return response.status, json.loads(text)
    except ValueError:
        return response.status, text


async def _nothing_stored_and_still_serving(api: Api) -> None:
    assert await api.deps.store.list_jobs(limit=10) == []
    root = Path(api.deps.settings.storage_dir)
    assert not root.exists() or not any(p.is_file() for p in root.rglob("*"))
    status, _ = await _post(api, json.dumps({"video_url": VIDEO_URL}))
    assert status == 202, "the server still works after the hostile request"


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 50_000,
        b'{"video_url": "http://93.184.216.34/a.mp4", "metadata": '
        + b'{"a":' * 5000
        + b"1"
        + b"}" * 5001,
        b'{"video_url": "http://93.184.216.34/a.mp4", "metadata": '
        + b"[" * 20_000
        + b"]" * 20_000
        + b"}",
    ],
    ids=["bare-nesting", "nested-metadata-objects", "nested-metadata-arrays"],
)
async def test_json_nesting_bombs_get_a_4xx_not_a_crash(api: Api, body: bytes) -> None:
    status, answer = await _post(api, body)
    assert 400 <= status < 500, (status, answer)
    assert isinstance(answer, dict) and answer["error"]["code"]
    await _nothing_stored_and_still_serving(api)


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xfe{\x00}\x00",  # UTF-16 with a BOM
        b'{"video_url": "\xc3\x28"}',  # invalid UTF-8
        b'{"video_url": NaN}',
        b'{"video_url": ' + b"9" * 5000 + b"}",  # a huge integer
        b'{"video_url": "http://93.184.216.34/a.mp4", "region": "\\ud800"}',  # lone surrogate
        b'{"video_url": "http://93.184.216.34/a.mp4", "video_url": 5}',  # duplicate key
        b'{"video_url": ["http://93.184.216.34/a.mp4"]}',
        b'{"video_url": "http://93.184.216.34/a.mp4", "metadata": "not an object"}',
        b'{"video_url": "http://93.184.216.34/a.mp4", "callback_url": 12}',
        b'{"video_url": "http://93.184.216.34/a.mp4", "region": "1,2,3,99999999999999999999"}',
        b"null",
        b"",
    ],
)
async def test_odd_json_gets_a_clear_4xx(api: Api, body: bytes) -> None:
    status, answer = await _post(api, body)
    assert 400 <= status < 500, (status, answer)
    assert isinstance(answer, dict) and answer["error"]["message"]
    await _nothing_stored_and_still_serving(api)


async def test_nested_metadata_in_an_upload_gets_a_4xx(api: Api, small_clip: Path) -> None:
    import aiohttp

    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("metadata", "[" * 5000 + "]" * 5000)
    form.add_field("file", small_clip.open("rb"), filename="clip.mp4", content_type="video/mp4")
    response = await api.client.post("/v1/jobs", data=form, headers=api.bearer())
    assert response.status == 400, await response.text()
    assert (await response.json())["error"]["code"] == "invalid_field"
    await _nothing_stored_and_still_serving(api)


async def test_oversized_chunked_json_body_without_a_length_gets_413(api: Api) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        yield b'{"video_url": "' + VIDEO_URL.encode() + b'", "metadata": {"pad": "'
        for _ in range(64):
            yield b"x" * 16_384
        yield b'"}}'

    status, answer = await _post(api, chunks())
    assert status == 413, (status, answer)
    await _nothing_stored_and_still_serving(api)


async def test_upload_declaring_a_huge_length_gets_413_before_any_byte_is_read(api: Api) -> None:
    # a raw socket: aiohttp's client will not send a length it does not then send
    host, port = api.base_url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            (
                "POST /v1/jobs HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: {api.bearer()['Authorization']}\r\n"
                "Content-Type: multipart/form-data; boundary=x\r\n"
                f"Content-Length: {10**15}\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(1000), 5)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer
    assert b'"too_large"' in answer
    await _nothing_stored_and_still_serving(api)


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Padding": "a" * 100_000},
        {f"X-Many-{i}": "b" for i in range(500)},
        {"Authorization": "Bearer " + "k" * 50_000},
        {"Idempotency-Key": "i" * 5000},
        {"webhook-id": "m" * 5000, "webhook-timestamp": "9" * 400, "webhook-signature": "v1,x"},
    ],
    ids=["one-huge-header", "many-headers", "huge-bearer", "huge-idempotency-key", "odd-signature"],
)
async def test_huge_or_odd_headers_get_a_4xx(api: Api, headers: dict[str, str]) -> None:
    auth = "Authorization" not in headers and "webhook-id" not in headers
    try:
        status, _ = await _post(api, json.dumps({"video_url": VIDEO_URL}), headers, auth=auth)
    except Exception as exc:  # noqa: BLE001 - the server may close the connection instead
        status = 400
        assert "Server disconnected" in str(exc) or "Connection" in exc.__class__.__name__, exc
    assert 400 <= status < 500
    await _nothing_stored_and_still_serving(api)


async def test_a_signed_request_replayed_in_parallel_makes_one_job(api: Api) -> None:
    raw = json.dumps({"video_url": VIDEO_URL}).encode()
    headers = api.signed(raw, msg_id="msg_parallel_replay")
    answers = await asyncio.gather(
        *(
            api.client.post(
                "/v1/jobs", data=raw, headers={"Content-Type": "application/json", **headers}
            )
            for _ in range(20)
        )
    )
    statuses = sorted(a.status for a in answers)
    ids = {(await a.json())["id"] for a in answers}
    assert len(ids) == 1 and statuses.count(202) == 1 and statuses.count(200) == 19, statuses
    assert len(await api.deps.store.list_jobs()) == 1
    assert await api.deps.queue.depth() == 1


async def test_a_signature_replayed_on_another_body_is_refused(api: Api) -> None:
    raw = json.dumps({"video_url": VIDEO_URL}).encode()
    headers = {"Content-Type": "application/json", **api.signed(raw, msg_id="msg_swap")}
    other = json.dumps({"video_url": "http://93.184.216.35/other.mp4"}).encode()
    response = await api.client.post("/v1/jobs", data=other, headers=headers)
    assert response.status == 401
    assert await api.deps.store.list_jobs() == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/jobs/../../../../etc/passwd"),
        ("GET", "/v1/jobs/%2e%2e%2f%2e%2e%2fetc%2fpasswd"),
        ("GET", "/v1/jobs/" + "a" * 5000),
        ("GET", "/v1/jobs/%00"),
        ("GET", "/files/..%2f..%2fblanklogo.db"),
        ("PATCH", "/v1/jobs"),
        ("TRACE", "/v1/jobs"),
        ("PUT", "/v1/jobs/x"),
        ("GET", "/v2/jobs"),
        ("POST", "/openapi.json"),
    ],
)
async def test_odd_paths_and_methods_get_a_4xx(api: Api, method: str, path: str) -> None:
    response = await api.client.request(method, path, headers=api.bearer())
    assert 400 <= response.status < 500, (response.status, await response.text())
    assert "root:" not in await response.text()
    await _nothing_stored_and_still_serving(api)
