"""Signed, expiring download links for files we serve ourselves (`GET /files/{key}`).

A link carries `expires` (Unix seconds) and `signature`, the hex HMAC-SHA256 of
"{key}\\n{expires}" under the URL signing key: `URL_SIGNING_KEY` when set, otherwise a
random key made once and kept in `DATA_DIR/url_signing.key` (mode 0600) so that links
stay valid across restarts and between the web and worker processes on one machine.
Pure functions apart from `load_signing_key`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
import uuid
from pathlib import Path
from urllib.parse import quote

from core.errors import ConfigError
from core.settings import Settings

KEY_FILE = "url_signing.key"


def sign(secret: bytes, key: str, expires: int) -> str:
    """The signature of a link to `key` valid until `expires` (Unix seconds)."""
    message = f"{key}\n{int(expires)}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def verify(
    secret: bytes, key: str, expires: str | int, signature: str, now: float | None = None
) -> bool:
    """Whether the signature matches and the link has not expired (constant-time compare)."""
    try:
        until = int(expires)
    except (TypeError, ValueError):
        return False
    if until < (time.time() if now is None else now):
        return False
    return hmac.compare_digest(sign(secret, key, until), str(signature))


def signed_url(
    base_url: str, secret: bytes, key: str, expires_in: int, now: float | None = None
) -> str:
    """`{base_url}/files/{key}?expires=…&signature=…`, valid for `expires_in` seconds."""
    expires = int(time.time() if now is None else now) + int(expires_in)
    path = quote(key, safe="/")
    return f"{base_url.rstrip('/')}/files/{path}?expires={expires}&signature={sign(secret, key, expires)}"


def load_signing_key(settings: Settings) -> bytes:
    """URL_SIGNING_KEY, else the key in DATA_DIR/url_signing.key (made on first use)."""
    if settings.url_signing_key is not None:
        value = settings.url_signing_key.get_secret_value()
        if not value:
            raise ConfigError("URL_SIGNING_KEY is set but empty")
        return value.encode()
    return _key_file(Path(settings.data_dir) / KEY_FILE)


def _key_file(path: Path) -> bytes:
    try:
        existing = path.read_bytes().strip()
    except FileNotFoundError:
        existing = b""
    if existing:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    # write a whole key under a temporary name, then link it into place: a process that
    # loses the race reads the winner's complete key, never a half-written file
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_hex(32).encode())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_bytes().strip()
