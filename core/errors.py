"""The service's one exception tree.

    BlankLogoError
    ├── ConfigError              settings that cannot work together
    ├── IllegalTransition        a job state move the state machine forbids
    ├── JobNotFound
    ├── StoreError               the database failed (temporary: retry / answer 503)
    ├── StorageError             the file store failed (temporary)
    ├── QueueError               Redis / arq failed (temporary)
    ├── UnsafeURL                an outbound URL points somewhere we never go
    ├── DownloadFailed           a video URL cannot be read right now (temporary)
    ├── InputError               the user's input is unusable (permanent, never retried)
    │   ├── NotAVideo            not a video, truncated, no video stream
    │   ├── VideoTooLarge        bytes, dimensions or duration beyond the limits
    │   └── BadRegion            a region option that does not parse or fit
    ├── EngineError              removal failed (temporary unless `permanent`)
    │   └── EngineTimeout
    └── DeliveryError            a reply could not be delivered (retried with backoff)

`InputError` messages are written for the person who sent the video: they are
shown to them as they are.
"""

from __future__ import annotations


class BlankLogoError(Exception):
    """Base of every error this service raises on purpose."""

    #: stable machine-readable code, used in HTTP error bodies
    code = "internal_error"
    #: whether retrying the same work can help
    temporary = False


class ConfigError(BlankLogoError):
    code = "config_error"


class IllegalTransition(BlankLogoError):
    code = "illegal_transition"


class JobNotFound(BlankLogoError):
    code = "not_found"


class StoreError(BlankLogoError):
    code = "database_unavailable"
    temporary = True


class StorageError(BlankLogoError):
    code = "storage_unavailable"
    temporary = True


class QueueError(BlankLogoError):
    code = "queue_unavailable"
    temporary = True


class UnsafeURL(BlankLogoError):
    code = "unsafe_url"


class DownloadFailed(BlankLogoError):
    """The video URL could not be read right now (network, timeout, server error); retried."""

    code = "download_failed"
    temporary = True


class InputError(BlankLogoError):
    code = "bad_input"


class NotAVideo(InputError):
    code = "not_a_video"


class VideoTooLarge(InputError):
    code = "too_large"


class BadRegion(InputError):
    code = "bad_region"


class EngineError(BlankLogoError):
    code = "engine_error"
    temporary = True


class EngineTimeout(EngineError):
    code = "engine_timeout"


class DeliveryError(BlankLogoError):
    code = "delivery_failed"
    temporary = True
