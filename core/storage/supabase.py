"""Supabase Storage: videos in one bucket, through the `supabase` package's async client.

Small objects go through the client's upload (multipart POST, explicit content type,
upsert). Objects above `RESUMABLE_THRESHOLD` go through Supabase's TUS endpoint
(`/storage/v1/upload/resumable`) in 6 MB chunks, resuming from the server's offset after
a dropped chunk — the client has no resumable upload, so this speaks the same HTTP API with
the same service-key auth. Downloads stream to disk rather than through the client's
`download()`, which would hold the whole video in memory.

Every third-party failure becomes `StorageError` here; nothing above this module sees
httpx or storage3 exceptions.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin

import httpx

from core.errors import ConfigError, StorageError, VideoTooLarge
from core.settings import Settings

logger = logging.getLogger(__name__)

#: files above this size use the resumable (TUS) upload; Supabase's own advice is 6 MB
RESUMABLE_THRESHOLD = 6 * 1024 * 1024
#: Supabase's TUS server accepts exactly 6 MB chunks (the last may be shorter)
TUS_CHUNK_SIZE = 6 * 1024 * 1024
#: retries of one TUS chunk after a network error or a 5xx, resuming from the server's offset
TUS_CHUNK_RETRIES = 3
#: a video upload or download may take minutes on a slow link; connecting may not
HTTP_TIMEOUT = httpx.Timeout(connect=15.0, read=300.0, write=300.0, pool=30.0)
_COPY_CHUNK = 1024 * 1024


class SupabaseStorage:
    """The Storage port on a Supabase Storage bucket (STORAGE_BACKEND=supabase)."""

    def __init__(self, settings: Settings) -> None:
        if not settings.supabase_url or settings.supabase_service_key is None:
            raise ConfigError(
                "STORAGE_BACKEND=supabase needs SUPABASE_URL and SUPABASE_SERVICE_KEY"
            )
        self._url = settings.supabase_url.rstrip("/")
        self._key = settings.supabase_service_key.get_secret_value()
        self._bucket = settings.supabase_bucket
        self._tmp_dir = settings.data_dir / "tmp"
        self._http: httpx.AsyncClient | None = None
        self._client: Any = None
        self._lock = asyncio.Lock()

    @property
    def storage_url(self) -> str:
        """The Storage API root, e.g. https://xyz.supabase.co/storage/v1."""
        return f"{self._url}/storage/v1"

    def _auth_headers(self) -> dict[str, str]:
        return {"apikey": self._key, "Authorization": f"Bearer {self._key}"}

    async def _bucket_api(self) -> Any:
        """The client's bucket proxy, creating the client on first use (no I/O at construction)."""
        async with self._lock:
            if self._client is None:
                from supabase import AsyncClientOptions, acreate_client

                self._http = httpx.AsyncClient(timeout=HTTP_TIMEOUT, follow_redirects=True)
                options = AsyncClientOptions(
                    httpx_client=self._http, auto_refresh_token=False, persist_session=False
                )
                try:
                    self._client = await acreate_client(self._url, self._key, options=options)
                except Exception as exc:
                    await self._http.aclose()
                    self._http = None
                    raise StorageError(f"cannot create the Supabase client: {exc}") from exc
        return self._client.storage.from_(self._bucket)

    async def _session(self) -> httpx.AsyncClient:
        await self._bucket_api()
        assert self._http is not None
        return self._http

    async def close(self) -> None:
        """Close the HTTP connections."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None
            self._client = None

    # --- the Storage port -------------------------------------------------------------

    async def put_file(self, key: str, path: Path, content_type: str = "video/mp4") -> int:
        """Store a local file under `key` (overwriting); return its size in bytes."""
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise StorageError(f"cannot read {path.name} to store it: {exc}") from exc
        if size > RESUMABLE_THRESHOLD:
            await self._put_resumable(key, path, size, content_type)
        else:
            bucket = await self._bucket_api()
            options = {"content-type": content_type, "upsert": "true", "cache-control": "3600"}
            try:
                await bucket.upload(key, path, options)
            except Exception as exc:
                raise _storage_error("upload", key, exc) from exc
        logger.info("stored %s (%d bytes, %s)", key, size, content_type)
        return size

    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        content_type: str = "application/octet-stream",
        max_bytes: int | None = None,
    ) -> int:
        """Spool the stream to a temporary file (never all in memory), then store it.

        Past `max_bytes` raise VideoTooLarge before anything reaches the bucket.
        """
        self._tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="upload-", dir=self._tmp_dir)
        spool = Path(name)
        try:
            total = 0
            with os.fdopen(fd, "wb") as out:
                async for chunk in chunks:
                    total += len(chunk)
                    if max_bytes is not None and total > max_bytes:
                        raise VideoTooLarge(
                            f"The video is larger than the {max_bytes // (1024 * 1024)} MB limit."
                        )
                    out.write(chunk)
            return await self.put_file(key, spool, content_type)
        finally:
            spool.unlink(missing_ok=True)

    async def get_file(self, key: str, dest: Path) -> None:
        """Stream the object to `dest` (written whole or not at all)."""
        http = await self._session()
        url = f"{self.storage_url}/object/{quote(self._bucket)}/{quote(key)}"
        partial = dest.with_name(dest.name + ".part")
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            async with http.stream("GET", url, headers=self._auth_headers()) as response:
                if response.status_code >= 400:
                    body = (await response.aread())[:300].decode(errors="replace")
                    raise StorageError(
                        f"Supabase Storage download of {key} failed: HTTP {response.status_code} {body}"
                    )
                with partial.open("wb") as out:
                    async for chunk in response.aiter_bytes(_COPY_CHUNK):
                        out.write(chunk)
            partial.replace(dest)
        except StorageError:
            partial.unlink(missing_ok=True)
            raise
        except (httpx.HTTPError, OSError) as exc:
            partial.unlink(missing_ok=True)
            raise _storage_error("download", key, exc) from exc

    async def signed_url(self, key: str, expires_in: int = 3600) -> str:
        """A time-limited GET URL for the object (Storage's /object/sign)."""
        bucket = await self._bucket_api()
        try:
            answer = await bucket.create_signed_url(key, expires_in)
        except Exception as exc:
            raise _storage_error("signing", key, exc) from exc
        url = answer.get("signedURL") or answer.get("signedUrl")
        if not url:
            raise StorageError(f"Supabase Storage gave no signed URL for {key}")
        return str(url)

    async def delete(self, key: str) -> None:
        """Remove the object; Storage answers a missing one with an empty list, not an error."""
        bucket = await self._bucket_api()
        try:
            await bucket.remove([key])
        except Exception as exc:
            raise _storage_error("delete", key, exc) from exc
        logger.info("deleted %s", key)

    async def exists(self, key: str) -> bool:
        """Whether the object is in the bucket."""
        bucket = await self._bucket_api()
        try:
            return bool(await bucket.exists(key))
        except Exception as exc:
            raise _storage_error("lookup", key, exc) from exc

    async def ping(self) -> None:
        """Check that the bucket answers (used by health checks)."""
        bucket = await self._bucket_api()
        try:
            await bucket.list(None, {"limit": 1})
        except Exception as exc:
            raise _storage_error("listing", self._bucket, exc) from exc

    # --- resumable upload (TUS 1.0.0) ---------------------------------------------------

    async def _put_resumable(self, key: str, path: Path, size: int, content_type: str) -> None:
        http = await self._session()
        endpoint = f"{self.storage_url}/upload/resumable"
        metadata = {
            "bucketName": self._bucket,
            "objectName": key,
            "contentType": content_type,
            "cacheControl": "3600",
        }
        headers = {
            **self._auth_headers(),
            "Tus-Resumable": "1.0.0",
            "Upload-Length": str(size),
            "Upload-Metadata": ",".join(
                f"{name} {base64.b64encode(value.encode()).decode()}"
                for name, value in metadata.items()
            ),
            "x-upsert": "true",
        }
        try:
            created = await http.post(endpoint, headers=headers)
            if created.status_code != 201 or "location" not in created.headers:
                raise StorageError(
                    f"Supabase Storage refused the resumable upload of {key}: "
                    f"HTTP {created.status_code} {created.text[:300]}"
                )
            location = urljoin(endpoint, created.headers["location"])
            with path.open("rb") as source:
                await self._send_chunks(http, location, source, size, key)
        except StorageError:
            raise
        except (httpx.HTTPError, OSError) as exc:
            raise _storage_error("resumable upload", key, exc) from exc

    async def _send_chunks(
        self, http: httpx.AsyncClient, location: str, source: Any, size: int, key: str
    ) -> None:
        offset = 0
        failures = 0
        while offset < size:
            source.seek(offset)
            chunk = source.read(TUS_CHUNK_SIZE)
            headers = {
                **self._auth_headers(),
                "Tus-Resumable": "1.0.0",
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
            }
            try:
                answer = await http.patch(location, headers=headers, content=chunk)
                if answer.status_code == 204:
                    offset = int(answer.headers.get("upload-offset", offset + len(chunk)))
                    failures = 0
                    continue
                if answer.status_code < 500 and answer.status_code != 409:
                    raise StorageError(
                        f"Supabase Storage refused a chunk of {key}: "
                        f"HTTP {answer.status_code} {answer.text[:300]}"
                    )
                problem: str = f"HTTP {answer.status_code}"
            except httpx.TransportError as exc:
                problem = str(exc) or exc.__class__.__name__
            failures += 1
            if failures > TUS_CHUNK_RETRIES:
                raise StorageError(f"resumable upload of {key} kept failing: {problem}")
            logger.warning("resumable upload of %s: chunk at %d failed (%s)", key, offset, problem)
            await asyncio.sleep(0.5 * failures)
            offset = await self._server_offset(http, location, offset)

    async def _server_offset(self, http: httpx.AsyncClient, location: str, fallback: int) -> int:
        """Ask the TUS server how much it holds, so the next chunk starts there."""
        headers = {**self._auth_headers(), "Tus-Resumable": "1.0.0"}
        try:
            answer = await http.head(location, headers=headers)
            return int(answer.headers["upload-offset"])
        except (httpx.HTTPError, KeyError, ValueError):
            return fallback


def _storage_error(what: str, key: str, exc: BaseException) -> StorageError:
    detail = getattr(exc, "message", None) or str(exc) or exc.__class__.__name__
    status = getattr(exc, "status", None)
    suffix = f" (HTTP {status})" if status else ""
    return StorageError(f"Supabase Storage {what} of {key} failed{suffix}: {detail}")
