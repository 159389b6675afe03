"""Everything the bot says, in one place (pure: no Telegram, no I/O)."""

from __future__ import annotations

from bots.telegram.limits import CLOUD_DOWNLOAD_LIMIT, MB, download_limit, upload_limit
from core.jobs import Job
from core.report_text import describe_removal
from core.settings import Settings

#: Telegram refuses messages longer than this
MAX_MESSAGE_CHARS = 4096
#: what a Bot API caption holds (sendVideo)
MAX_CAPTION_CHARS = 1024

RECEIVED = "Got your video, fetching it from Telegram…"
NOT_A_VIDEO_DOCUMENT = (
    "That file is not a video. Send a video (MP4, MOV, WebM, MKV…) as a video, "
    "as a file, or as a GIF, and I'll remove its watermark."
)
SEND_A_VIDEO = "Send me a video and I'll remove its watermark. /help shows options and limits."
BUSY = (
    "I couldn't take your video just now (our queue or storage is not answering). "
    "Nothing was queued. Please send it again in a minute."
)
FETCH_FAILED = (
    "I couldn't fetch your video from Telegram. Nothing was queued. Please send it again."
)


def help_text(settings: Settings) -> str:
    """/start and /help: what the bot does and its limits."""
    size_note = (
        ""
        if settings.telegram_local_mode
        else " (Telegram lets bots download no more; for bigger videos use our webhook API)"
    )
    return (
        "I remove visible watermarks and logos from videos.\n\n"
        "Send me a video — as a video, as a file, or as a GIF — here or in a group I'm in, "
        "and I'll reply with the cleaned video.\n\n"
        "Options go in the caption:\n"
        "  region=auto (default: I find the mark myself)\n"
        "  region=top-left | top-right | bottom-left | bottom-right\n"
        "  region=x,y,w,h (the mark's box in pixels, drawn close around it)\n\n"
        "Limits:\n"
        f"  • files up to {download_limit(settings) // MB} MB{size_note}\n"
        f"  • videos up to {settings.max_duration_s} s long and "
        f"{settings.max_width}x{settings.max_height}\n"
        f"  • results up to {upload_limit(settings) // MB} MB come back as a video, "
        "bigger ones as a download link\n"
        f"  • files are deleted after {settings.result_ttl_days} days"
    )


def too_large(size_bytes: int | None, settings: Settings) -> str:
    """Refusal for a file bigger than the bot may download (size unknown: None)."""
    size = f"{size_bytes / MB:.1f} MB" if size_bytes else "too big"
    limit = download_limit(settings)
    if limit < CLOUD_DOWNLOAD_LIMIT or settings.telegram_local_mode:
        return (
            f"This file is {size}; the largest video I take is {limit // MB} MB. "
            "Please send a shorter or smaller video."
        )
    return (
        f"This file is {size}, and Telegram lets bots download files of at most "
        f"{CLOUD_DOWNLOAD_LIMIT // MB} MB. Send a smaller video, or send the video's URL to our "
        f"webhook API ({settings.public_base_url.rstrip('/')}/v1/jobs), or ask the operator to "
        "run a local Bot API server, which lifts the limit."
    )


def rate_limited(limit: int) -> str:
    """Refusal once a user sent more videos this hour than USER_RATE_LIMIT_PER_HOUR."""
    return (
        f"You've sent {limit} videos this hour, which is the most I take from one person. "
        "Please send this one again later."
    )


def queued(job_id: str, position: int) -> str:
    """The status reply once the job is accepted."""
    return f"Queued, position {position}. I'll update this message as it goes.\nJob {job_id}"


def already_queued(job: Job) -> str:
    """The status reply when Telegram delivered the same message twice."""
    return f"I already have this video as job {job.id} ({job.status.value})."


def progress(job: Job) -> str:
    """The status reply while the job runs."""
    if job.status.value == "queued":
        return f"Queued again after a hiccup, I'll retry shortly.\nJob {job.id}"
    step = f" — {job.current_step}" if job.current_step else ""
    return f"Cleaning your video… {job.progress}%{step}\nJob {job.id}"


def done(job: Job, *, as_link: bool = False) -> str:
    """The status reply when the result was sent."""
    what = "A download link for the cleaned video" if as_link else "The cleaned video"
    return f"Done. {what} is in the reply below.\nJob {job.id}"


def result_caption(job: Job) -> str:
    """Caption of the cleaned video: what was removed, or that nothing was found."""
    job_line = f"\nJob {job.id}"
    return clip(describe_removal(job.report or {}), MAX_CAPTION_CHARS - len(job_line)) + job_line


def result_link(job: Job, url: str, hours: int, limit_bytes: int) -> str:
    """The reply when the result is too big for Telegram."""
    size_mb = (job.output_size_bytes or 0) / MB
    return (
        f"Your cleaned video is ready ({size_mb:.1f} MB), but Telegram lets bots send at most "
        f"{limit_bytes // MB} MB. Download it here (the link works for {hours} hours):\n{url}\n"
        f"Job {job.id}"
    )


def failed(job: Job) -> str:
    """The reply when the job failed, with the reason in plain words."""
    reason = (job.error_message or "something went wrong on our side").strip()
    if len(reason) > 500:
        reason = reason[:497] + "…"
    return f"Sorry, I couldn't clean this video: {reason}\nJob {job.id}"


def cancelled(job: Job) -> str:
    """The reply when an operator cancelled the job."""
    return f"This video's job was cancelled by an operator.\nJob {job.id}"


def clip(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Trim text to what one Telegram message (or `limit` characters) holds."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
