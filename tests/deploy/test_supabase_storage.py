"""SupabaseStorage through the real `supabase` client against a loopback Storage server."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from core.errors import ConfigError, StorageError, VideoTooLarge
from core.storage import supabase as supabase_storage
from core.storage.supabase import SupabaseStorage
from tests.deploy.fake_supabase import FakeStorage

SERVICE_KEY = "service-role-key-for-tests"


@pytest.fixture
async def storage(
    fake_supabase: tuple[FakeStorage, str], make_settings: Callable[..., Any]
) -> AsyncIterator[SupabaseStorage]:
    settings = make_settings(
        storage_backend="supabase",
        supabase_url=fake_supabase[1],
        supabase_service_key=SERVICE_KEY,
        supabase_bucket="videos",
    )
    store = SupabaseStorage(settings)
    try:
        yield store
    finally:
        await store.close()


async def test_small_file_is_uploaded_with_service_key_content_type_and_upsert(
    storage: SupabaseStorage, fake_supabase: tuple[FakeStorage, str], tmp_path: Path
) -> None:
    state, _ = fake_supabase
    video = tmp_path / "in.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(5000))

    size = await storage.put_file("inputs/j1/in.mp4", video, "video/mp4")
    # a second put of the same key overwrites instead of failing with 409
    await storage.put_file("inputs/j1/in.mp4", video, "video/mp4")

    assert size == video.stat().st_size
    assert state.objects[("videos", "inputs/j1/in.mp4")] == (video.read_bytes(), "video/mp4")
    posts = state.seen("POST", "/storage/v1/object/videos/inputs/j1/in.mp4")
    assert len(posts) == 2
    assert posts[0].headers["authorization"] == f"Bearer {SERVICE_KEY}"
    assert posts[0].headers["apikey"] == SERVICE_KEY
    assert posts[0].headers["x-upsert"] == "true"
    assert posts[0].json == {"content_type": "video/mp4"}
    assert posts[0].body_size == video.stat().st_size


async def test_download_streams_the_object_to_disk(
    storage: SupabaseStorage, fake_supabase: tuple[FakeStorage, str], tmp_path: Path
) -> None:
    state, _ = fake_supabase
    payload = os.urandom(3 * 1024 * 1024 + 17)
    state.objects[("videos", "outputs/j2.mp4")] = (payload, "video/mp4")

    dest = tmp_path / "out" / "j2.mp4"
    await storage.get_file("outputs/j2.mp4", dest)

    assert dest.read_bytes() == payload
    get = state.seen("GET", "/storage/v1/object/videos/outputs/j2.mp4")[0]
    assert get.headers["authorization"] == f"Bearer {SERVICE_KEY}"


async def test_missing_object_download_raises_storage_error_and_leaves_no_file(
    storage: SupabaseStorage, tmp_path: Path
) -> None:
    dest = tmp_path / "nothing.mp4"
    with pytest.raises(StorageError, match="404"):
        await storage.get_file("outputs/missing.mp4", dest)
    assert not dest.exists()
    assert not (tmp_path / "nothing.mp4.part").exists()


async def test_signed_url_is_absolute_and_downloadable_without_the_key(
    storage: SupabaseStorage, fake_supabase: tuple[FakeStorage, str]
) -> None:
    state, base = fake_supabase
    state.objects[("videos", "outputs/j3.mp4")] = (b"cleaned video", "video/mp4")

    url = await storage.signed_url("outputs/j3.mp4", expires_in=600)

    assert url.startswith(f"{base}/storage/v1/object/sign/videos/outputs/j3.mp4?token=")
    assert state.seen("POST", "/object/sign/")[0].json == {"expiresIn": "600"}
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        assert await response.read() == b"cleaned video"
    anonymous = state.seen("GET", "/object/sign/")[0]
    assert "authorization" not in anonymous.headers


async def test_signing_a_missing_object_raises_storage_error(storage: SupabaseStorage) -> None:
    with pytest.raises(StorageError, match="not found"):
        await storage.signed_url("outputs/missing.mp4")


async def test_delete_removes_by_prefix_and_tolerates_missing_objects(
    storage: SupabaseStorage, fake_supabase: tuple[FakeStorage, str]
) -> None:
    state, _ = fake_supabase
    state.objects[("videos", "inputs/j4/a.mp4")] = (b"x", "video/mp4")

    assert await storage.exists("inputs/j4/a.mp4")
    await storage.delete("inputs/j4/a.mp4")
    await storage.delete("inputs/j4/a.mp4")

    assert not await storage.exists("inputs/j4/a.mp4")
    deletes = state.seen("DELETE", "/storage/v1/object/videos")
    assert [d.json for d in deletes] == [{"prefixes": ["inputs/j4/a.mp4"]}] * 2


async def test_large_file_goes_through_resumable_upload_in_six_mb_chunks(
    storage: SupabaseStorage, fake_supabase: tuple[FakeStorage, str], tmp_path: Path
) -> None:
    state, _ = fake_supabase
    payload = os.urandom(supabase_storage.TUS_CHUNK_SIZE * 2 + 1234)
    video = tmp_path / "big.mp4"
    video.write_bytes(payload)
    state.fail_patches = 1  # the first chunk fails once: the upload must resume, not restart

    size = await storage.put_file("inputs/j5/big.mp4", video, "video/mp4")

    assert size == len(payload)
    assert state.objects[("videos", "inputs/j5/big.mp4")] == (payload, "video/mp4")
    create = state.seen("POST", "/upload/resumable")[0]
    assert create.headers["tus-resumable"] == "1.0.0"
    assert create.headers["upload-length"] == str(len(payload))
    assert create.headers["x-upsert"] == "true"
    assert create.headers["authorization"] == f"Bearer {SERVICE_KEY}"
    upload = next(iter(state.uploads.values()))
    assert upload["metadata"]["bucketName"] == "videos"
    assert upload["metadata"]["objectName"] == "inputs/j5/big.mp4"
    assert upload["metadata"]["contentType"] == "video/mp4"
    patches = state.seen("PATCH", "/upload/resumable/")
    assert [p.body_size for p in patches] == [
        supabase_storage.TUS_CHUNK_SIZE,
        supabase_storage.TUS_CHUNK_SIZE,
        supabase_storage.TUS_CHUNK_SIZE,
        1234,
    ]
    assert all(p.headers["content-type"] == "application/offset+octet-stream" for p in patches)
    assert state.seen("HEAD", "/upload/resumable/")  # asked the server where to resume
    assert not state.seen("POST", "/storage/v1/object/videos/")


async def _chunks(parts: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_put_stream_stores_the_stream_and_cleans_its_spool(
    storage: SupabaseStorage, fake_supabase: tuple[FakeStorage, str], tmp_path: Path
) -> None:
    state, _ = fake_supabase
    size = await storage.put_stream(
        "inputs/j6/clip.mov", _chunks([b"abc", b"defg"]), "video/quicktime", max_bytes=100
    )

    assert size == 7
    assert state.objects[("videos", "inputs/j6/clip.mov")] == (b"abcdefg", "video/quicktime")
    assert list((tmp_path / "tmp").iterdir()) == []


async def test_put_stream_past_max_bytes_raises_too_large_and_stores_nothing(
    storage: SupabaseStorage, fake_supabase: tuple[FakeStorage, str], tmp_path: Path
) -> None:
    state, _ = fake_supabase
    with pytest.raises(VideoTooLarge):
        await storage.put_stream(
            "inputs/j7/big.mp4", _chunks([b"x" * 60, b"y" * 60]), "video/mp4", max_bytes=100
        )

    assert state.objects == {}
    assert not state.seen("POST")
    assert list((tmp_path / "tmp").iterdir()) == []


async def test_unreachable_supabase_raises_storage_error(
    make_settings: Callable[..., Any], tmp_path: Path
) -> None:
    settings = make_settings(
        storage_backend="supabase",
        supabase_url="http://127.0.0.1:9",  # discard port: nothing listens
        supabase_service_key=SERVICE_KEY,
    )
    store = SupabaseStorage(settings)
    video = tmp_path / "a.mp4"
    video.write_bytes(b"x")
    try:
        with pytest.raises(StorageError, match="upload of inputs/a.mp4 failed"):
            await store.put_file("inputs/a.mp4", video)
    finally:
        await store.close()


def test_missing_credentials_are_a_clear_error(make_settings: Callable[..., Any]) -> None:
    with pytest.raises(ConfigError, match="SUPABASE_URL and SUPABASE_SERVICE_KEY"):
        SupabaseStorage(make_settings(storage_backend="supabase"))
