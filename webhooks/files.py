"""`GET /files/{key}`: downloads of locally stored files through signed, expiring links.

Only mounted with STORAGE_BACKEND=local (Supabase serves its own signed URLs). The link
must carry a valid `signature` for the key and an `expires` time still in the future
(403 otherwise, before anything about the file is revealed); a valid link to a file
that is gone answers 404. The file is streamed from disk by aiohttp's FileResponse
(ranges and HEAD included).
"""

from __future__ import annotations

import logging

from aiohttp import web

from core.deps import Deps
from core.storage.local import path_for
from core.storage.signing import load_signing_key, verify
from webhooks.errors import error_response

log = logging.getLogger(__name__)

CONTENT_TYPES = {".mp4": "video/mp4", ".json": "application/json", ".txt": "text/plain"}


def setup(app: web.Application, deps: Deps) -> None:
    """Mount GET /files/{key} when files are stored locally."""
    settings = deps.settings
    if settings.storage_backend != "local":
        return
    secret = load_signing_key(settings)
    root = settings.storage_dir

    async def serve_file(request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        query = request.query
        if not verify(secret, key, query.get("expires", ""), query.get("signature", "")):
            return error_response(403, "forbidden", "this link is invalid or has expired")
        try:
            path = path_for(root, key)
        except ValueError:
            return error_response(404, "not_found", "no such file")
        if not path.is_file():
            return error_response(404, "not_found", "no such file")
        content_type = CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
        return web.FileResponse(
            path,
            headers={
                "Content-Type": content_type,
                "Cache-Control": "private, no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )

    app.router.add_get("/files/{key:.+}", serve_file, name="signed_file")
