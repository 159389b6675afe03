"""LocalStorage: keys stay inside STORAGE_DIR, streams are written whole or not at all."""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from core.errors import StorageError, VideoTooLarge
from core.settings import Settings
from core.storage import open_storage
from core.storage.local import LocalStorage, check_key
from core.storage.signing import load_signing_key, verify


@pytest.fixture
def storage(make_settings: Callable[..., Settings]) -> LocalStorage:
    opened = open_storage(make_settings())
    assert isinstance(opened, LocalStorage)
    return opened


async def chunks_of(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    "key",
    ["", "/etc/passwd", "../x", "a/../../x", "a//b", "./a", "a/.", "a\\b", "a\x00b", "a\nb", ".."],
)
def test_unsafe_keys_are_refused(key: str) -> None:
    with pytest.raises(ValueError):
        check_key(key)


async def test_unsafe_key_never_touches_the_disk(storage: LocalStorage, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        await storage.put_stream("../outside.mp4", chunks_of(b"x"))
    with pytest.raises(ValueError):
        await storage.delete("inputs/../../blanklogo.db")
    assert not (tmp_path / "outside.mp4").exists()


async def test_stream_is_stored_whole(storage: LocalStorage, tmp_path: Path) -> None:
    parts = [os.urandom(700_000) for _ in range(3)]
    size = await storage.put_stream("inputs/j1/clip.mp4", chunks_of(*parts), max_bytes=3_000_000)
    assert size == 2_100_000
    assert await storage.exists("inputs/j1/clip.mp4")
    dest = tmp_path / "copy.mp4"
    await storage.get_file("inputs/j1/clip.mp4", dest)
    assert dest.read_bytes() == b"".join(parts)
    assert files_under(storage.root) == [storage.path_for("inputs/j1/clip.mp4")]


async def test_stream_past_the_limit_raises_and_leaves_nothing(storage: LocalStorage) -> None:
    with pytest.raises(VideoTooLarge, match="limit"):
        await storage.put_stream(
            "inputs/j2/big.mp4", chunks_of(b"a" * 600, b"b" * 600), max_bytes=1000
        )
    assert not await storage.exists("inputs/j2/big.mp4")
    assert list(storage.root.rglob("*")) == []


async def test_failing_stream_leaves_nothing(storage: LocalStorage) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * 10
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await storage.put_stream("inputs/j3/clip.mp4", broken())
    assert list(storage.root.rglob("*")) == []


async def test_put_replaces_an_existing_object(storage: LocalStorage) -> None:
    await storage.put_stream("outputs/j.mp4", chunks_of(b"old"))
    await storage.put_stream("outputs/j.mp4", chunks_of(b"new!"))
    assert storage.path_for("outputs/j.mp4").read_bytes() == b"new!"


async def test_put_file_copies_and_reports_size(storage: LocalStorage, tmp_path: Path) -> None:
    source = tmp_path / "result.mp4"
    source.write_bytes(b"m" * 5000)
    assert await storage.put_file("outputs/j4.mp4", source) == 5000
    assert storage.path_for("outputs/j4.mp4").read_bytes() == source.read_bytes()
    with pytest.raises(StorageError):
        await storage.put_file("outputs/j5.mp4", tmp_path / "missing.mp4")
    assert not await storage.exists("outputs/j5.mp4")


async def test_missing_object_raises_storage_error(storage: LocalStorage, tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="no stored file"):
        await storage.get_file("outputs/nothing.mp4", tmp_path / "x.mp4")
    assert not await storage.exists("outputs/nothing.mp4")


async def test_delete_removes_the_file_and_empty_folders(storage: LocalStorage) -> None:
    await storage.put_stream("inputs/j6/a.mp4", chunks_of(b"a"))
    await storage.delete("inputs/j6/a.mp4")
    await storage.delete("inputs/j6/a.mp4")  # missing is not an error
    assert not await storage.exists("inputs/j6/a.mp4")
    assert list(storage.root.rglob("*")) == []
    assert storage.root.is_dir()
    await storage.ping()


async def test_signed_url_points_at_files_route(storage: LocalStorage) -> None:
    url = await storage.signed_url("outputs/j7.mp4", expires_in=600)
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == "http://127.0.0.1:8080"
    assert parts.path == "/files/outputs/j7.mp4"
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    secret = storage._signing_key
    assert verify(secret, "outputs/j7.mp4", query["expires"], query["signature"])
    assert not verify(secret, "outputs/j8.mp4", query["expires"], query["signature"])


def test_generated_signing_key_is_private_and_kept(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings()
    first = load_signing_key(settings)
    key_file = tmp_path / "url_signing.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(first) >= 64
    assert load_signing_key(make_settings()) == first
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".url_signing")] == []


def test_configured_signing_key_wins(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    assert load_signing_key(make_settings(url_signing_key="s3cret")) == b"s3cret"
    assert not (tmp_path / "url_signing.key").exists()
