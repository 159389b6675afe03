"""Every sentence the Slack bot says, as pure functions of what it knows (Slack mrkdwn)."""

from __future__ import annotations

from datetime import datetime

from core.jobs import Job
from core.report_text import describe_removal

HOW_TO = (
    "Send me a video (mp4, mov, webm, mkv…) in a channel I'm in, in a thread, or in a DM, "
    "and I'll remove the watermark or logo and post the cleaned video back in the thread.\n"
    "Options go in the message text: `region=bottom-right` (or `top-left`, `top-right`, "
    "`bottom-left`), or an exact box `region=x,y,w,h` in pixels, drawn close around the mark. "
    "Without one I find the mark myself."
)


def receiving(filename: str, size_bytes: int | None) -> str:
    """The first reply, posted while the video downloads."""
    size = f" ({format_size(size_bytes)})" if size_bytes else ""
    return f":inbox_tray: Got `{filename}`{size}, fetching it…"


def queued(job_id: str, filename: str, position: int) -> str:
    """The reply once the job is kept and queued."""
    where = f"position {position}" if position > 0 else "starting now"
    return f":hourglass_flowing_sand: `{filename}` is queued, {where}. Job `{job_id}`."


def already_known(job: Job) -> str:
    """The reply when this exact file was already turned into a job."""
    return f":information_source: `{job.input_filename}` is already job `{job.id}` ({job.status.value})."


def rejected(filename: str, reason: str) -> str:
    """A video we will not take, with the reason in the user's words."""
    return f":warning: I can't take `{filename}`: {reason}"


def rate_limited(filename: str, per_hour: int) -> str:
    """The sender passed their hourly allowance of videos."""
    return (
        f":raised_hand: I can take {per_hour} videos per person per hour, so `{filename}` has to "
        "wait: please send it again in a while."
    )


def try_again(filename: str) -> str:
    """A temporary failure before the job was kept: nothing was accepted."""
    return (
        f":warning: I couldn't take `{filename}` right now (a service I need is not answering). "
        "Nothing was queued; please send it again in a minute."
    )


def interrupted(filename: str) -> str:
    """The web process stopped while it was fetching the video."""
    return f":warning: I was restarted while fetching `{filename}`; nothing was queued. Please send it again."


def bad_options(reason: str) -> str:
    """The options in the message text do not parse."""
    return f":warning: {reason}\n\n{HOW_TO}"


def progress(job: Job) -> str:
    """The status message while the job runs."""
    step = f" — {job.current_step}" if job.current_step else ""
    return f":gear: `{job.input_filename or job.id}`: {job.progress}%{step}. Job `{job.id}`."


def done(job: Job) -> str:
    """The one-line summary next to the cleaned video."""
    return f":sparkles: {describe_removal(job.report or {})} {describe_duration(job)}".rstrip()


def done_status(job: Job) -> str:
    """The status message once the result is posted."""
    return (
        f":white_check_mark: `{job.input_filename or job.id}` is done, see below. Job `{job.id}`."
    )


def done_link(job: Job, url: str, expires_at: datetime) -> str:
    """The result as a link, when the file is past Slack's upload limit."""
    size = format_size(job.output_size_bytes)
    return (
        f"{done(job)}\nThe cleaned video ({size}) is too large to upload here: "
        f"<{url}|download it> (link expires {expires_at:%Y-%m-%d %H:%M} UTC)."
    )


def failed(job: Job) -> str:
    """Why the job failed, in plain words, with its id."""
    reason = (job.error_message or "something went wrong on our side").rstrip(".")
    return f":x: Sorry, I couldn't clean `{job.input_filename or 'the video'}`: {reason}. Job `{job.id}`."


def cancelled(job: Job) -> str:
    """The job was cancelled by an operator."""
    return f":no_entry_sign: Job `{job.id}` (`{job.input_filename or 'video'}`) was cancelled."


def describe_duration(job: Job) -> str:
    """How long the work took (processing, and the whole wait when it differs)."""
    if job.processing_time_ms is None:
        return ""
    text = f"Took {job.processing_time_ms / 1000:.1f} s"
    if job.completed_at is not None:
        total = (job.completed_at - job.created_at).total_seconds()
        if total - job.processing_time_ms / 1000 >= 1:
            text += f" ({total:.0f} s from upload to result)"
    return text + "."


def format_size(size_bytes: int | None) -> str:
    """Bytes as a short human size."""
    if size_bytes is None:
        return "unknown size"
    if size_bytes < 1024 * 1024:
        return f"{size_bytes / 1024:.0f} KB"
    return f"{size_bytes / (1024 * 1024):.1f} MB"
