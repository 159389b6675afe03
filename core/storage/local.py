"""Local file storage: objects are files under STORAGE_DIR, named by their key.

Keys are relative paths such as `inputs/{job_id}/{filename}` or `outputs/{job_id}.mp4`;
anything that could leave STORAGE_DIR (`..`, absolute paths, backslashes, control
characters) is refused. Writes go to a hidden temporary file in the same directory and
are renamed into place, so a reader never sees half a video. Downloads for others are
signed, expiring links to `GET /files/{key}` (see `core.storage.signing`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from core.errors import StorageError, VideoTooLarge
from core.settings import Settings
from core.storage import signing

log = logging.getLogger(__name__)
T = TypeVar("T")

#: bytes gathered from a stream before one write to disk
WRITE_BUFFER = 1024 * 1024


def check_key(key: str) -> str:
    """The key itself if it is a safe relative path; ValueError otherwise."""
    if not isinstance(key, str) or not key:
        raise ValueError("a storage key must be a non-empty string")
    if key.startswith("/") or "\\" in key or any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise ValueError(f"unsafe storage key {key!r}")
    if any(part in {"", ".", ".."} for part in key.split("/")):
        raise ValueError(f"unsafe storage key {key!r}")
    return key


def path_for(root: Path, key: str) -> Path:
    """Where the object `key` lives under `root`; ValueError for an unsafe key."""
    base = Path(root).resolve()
    path = (base / check_key(key)).resolve()
    if not path.is_relative_to(base) or path == base:
        raise ValueError(f"unsafe storage key {key!r}")
    return path


def _limit_text(max_bytes: int) -> str:
    mb = max_bytes / (1024 * 1024)
    return f"{mb:g} MB" if mb >= 1 else f"{max_bytes} bytes"


async def _disk(key: str, fn: Callable[..., T], *args: Any) -> T:
    """Run a blocking file operation in a thread; its OSError becomes StorageError."""
    try:
        return await asyncio.to_thread(fn, *args)
    except OSError as exc:
        raise StorageError(f"cannot store {key}: {exc.strerror or exc}") from exc


class LocalStorage:
    """The Storage port on a local directory (STORAGE_BACKEND=local)."""

    def __init__(self, root: Path, public_base_url: str, signing_key: bytes) -> None:
        self.root = Path(root)
        self._base_url = public_base_url
        self._signing_key = signing_key

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalStorage:
        """Storage under STORAGE_DIR, links under PUBLIC_BASE_URL."""
        try:
            Path(settings.storage_dir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the storage directory: {exc}") from exc
        return cls(
            settings.storage_dir, settings.public_base_url, signing.load_signing_key(settings)
        )

    def path_for(self, key: str) -> Path:
        """The file that holds `key`."""
        return path_for(self.root, key)

    async def close(self) -> None:
        """Nothing to release."""

    async def ping(self) -> None:
        """Raise StorageError when the storage directory is not a writable directory."""
        if not self.root.is_dir() or not os.access(self.root, os.W_OK | os.X_OK):
            raise StorageError(f"the storage directory {self.root} is missing or not writable")

    async def put_file(self, key: str, path: Path, content_type: str = "video/mp4") -> int:
        """Store a local file under `key`; return its size in bytes."""
        target = self.path_for(key)
        tmp = self._temp_for(target)
        try:
            await asyncio.to_thread(self._copy_in, Path(path), tmp, target)
        except OSError as exc:
            await asyncio.to_thread(self._discard, tmp)
            raise StorageError(f"cannot store {key}: {exc.strerror or exc}") from exc
        return target.stat().st_size

    def _copy_in(self, source: Path, tmp: Path, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)

    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        content_type: str = "application/octet-stream",
        max_bytes: int | None = None,
    ) -> int:
        """Store a stream without holding it in memory; VideoTooLarge past `max_bytes`."""
        target = self.path_for(key)
        tmp = self._temp_for(target)
        size = 0
        out: BinaryIO | None = None
        try:
            out = await _disk(key, self._open_temp, tmp)
            buffer = bytearray()
            async for chunk in chunks:  # the source's own errors pass through unchanged
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise VideoTooLarge(
                        f"The file is larger than the {_limit_text(max_bytes)} limit."
                    )
                buffer += chunk
                if len(buffer) >= WRITE_BUFFER:
                    await _disk(key, out.write, bytes(buffer))
                    buffer.clear()
            if buffer:
                await _disk(key, out.write, bytes(buffer))
            await _disk(key, out.close)
            await _disk(key, os.replace, tmp, target)
        except BaseException:
            if out is not None:
                out.close()
            await asyncio.to_thread(self._discard, tmp)
            raise
        return size

    def _open_temp(self, tmp: Path) -> BinaryIO:
        tmp.parent.mkdir(parents=True, exist_ok=True)
        return open(tmp, "xb")  # noqa: SIM115 - closed by put_stream

    @staticmethod
    def _temp_for(target: Path) -> Path:
        return target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")

    def _discard(self, tmp: Path) -> None:
        tmp.unlink(missing_ok=True)
        self._prune(tmp.parent)

    def _prune(self, directory: Path) -> None:
        """Remove directories left empty, up to (not including) the root."""
        base = self.root.resolve()
        while directory != base and directory.is_relative_to(base):
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent

    async def get_file(self, key: str, dest: Path) -> None:
        """Copy the object to a local path; StorageError when missing or unreadable."""
        source = self.path_for(key)
        try:
            await asyncio.to_thread(shutil.copyfile, source, dest)
        except FileNotFoundError as exc:
            if not source.exists():
                raise StorageError(f"no stored file {key}") from exc
            raise StorageError(f"cannot copy {key}: {exc.strerror or exc}") from exc
        except OSError as exc:
            raise StorageError(f"cannot read {key}: {exc.strerror or exc}") from exc

    async def signed_url(self, key: str, expires_in: int = 3600) -> str:
        """A link to GET /files/{key} that works until it expires."""
        check_key(key)
        return signing.signed_url(self._base_url, self._signing_key, key, expires_in)

    async def delete(self, key: str) -> None:
        """Remove the object (and directories it leaves empty); missing is not an error."""
        path = self.path_for(key)
        try:
            await asyncio.to_thread(path.unlink, True)
        except OSError as exc:
            raise StorageError(f"cannot delete {key}: {exc.strerror or exc}") from exc
        await asyncio.to_thread(self._prune, path.parent)

    async def exists(self, key: str) -> bool:
        """Whether an object is stored under `key`."""
        return await asyncio.to_thread(self.path_for(key).is_file)
