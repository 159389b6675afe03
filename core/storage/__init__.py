"""File storage for inputs and outputs: `open_storage(settings)` picks the backend.

STORAGE_BACKEND=local (the default) keeps files under STORAGE_DIR and serves them with
signed links through `GET /files/{key}` (`webhooks.files`); STORAGE_BACKEND=supabase keeps
them in a Supabase Storage bucket (`core.storage.supabase`).
"""

from __future__ import annotations

from core.ports import Storage
from core.settings import Settings


def open_storage(settings: Settings) -> Storage:
    """The Storage that STORAGE_BACKEND names (no network I/O here)."""
    if settings.storage_backend == "supabase":
        from core.storage.supabase import SupabaseStorage

        return SupabaseStorage(settings)
    from core.storage.local import LocalStorage

    return LocalStorage.from_settings(settings)
