"""Turn ops reports into words for each place an operator reads them. Pure: no I/O.

Formats:
* ``text``     plain text (logs, HTTP, piping `blanklogo ops` into a file);
* ``terminal`` plain text with ANSI colours for the levels (an interactive terminal);
* ``slack``    Slack mrkdwn (``*bold*``, ```code```, ``&<>`` escaped);
* ``telegram`` plain text with emoji, to be sent *without* ``parse_mode``; it never
  uses ``<``, ``>`` or ``&`` of its own, so it also survives ``parse_mode=HTML`` unless a
  job's own error message contains them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.ops.reports import QueueReport, StuckReport
from core.ops.stats import WindowStats
from core.ops.thresholds import (
    COMPLETION_TIME_S,
    ERROR_RATE_PCT,
    QUEUE_DEPTH,
    THRESHOLDS,
    Level,
)

FORMATS = ("text", "terminal", "slack", "telegram")

_ANSI = {Level.NORMAL: "\033[32m", Level.WARNING: "\033[33m", Level.CRITICAL: "\033[31m"}
_ANSI_STATUS = {"ok": "\033[32m", "degraded": "\033[33m", "down": "\033[31m"}
_RESET = "\033[0m"
_SLACK_LEVEL = {
    Level.NORMAL: ":large_green_circle:",
    Level.WARNING: ":large_yellow_circle:",
    Level.CRITICAL: ":red_circle:",
}
_EMOJI_LEVEL = {Level.NORMAL: "🟢", Level.WARNING: "🟡", Level.CRITICAL: "🔴"}
_SLACK_STATUS = {"ok": ":white_check_mark:", "degraded": ":warning:", "down": ":x:"}
_EMOJI_STATUS = {"ok": "✅", "degraded": "⚠️", "down": "❌"}


@dataclass(frozen=True)
class Style:
    """The few pieces of markup a report needs, per format."""

    fmt: str

    def esc(self, value: object) -> str:
        text = "" if value is None else str(value)
        if self.fmt == "slack":
            return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return text

    def bold(self, text: str) -> str:
        if self.fmt == "slack":
            return f"*{text}*"
        if self.fmt == "terminal":
            return f"\033[1m{text}{_RESET}"
        return text

    def code(self, value: object) -> str:
        text = self.esc(value)
        return f"`{text}`" if self.fmt == "slack" else text

    def level(self, level: Level | None) -> str:
        if level is None:
            return ""
        if self.fmt == "slack":
            return f"{_SLACK_LEVEL[level]} {level.value}"
        if self.fmt == "telegram":
            return f"{_EMOJI_LEVEL[level]} {level.value}"
        if self.fmt == "terminal":
            return f"{_ANSI[level]}[{level.value}]{_RESET}"
        return f"[{level.value}]"

    def status(self, status: str) -> str:
        if self.fmt == "slack":
            return f"{_SLACK_STATUS.get(status, ':grey_question:')} {status}"
        if self.fmt == "telegram":
            return f"{_EMOJI_STATUS.get(status, '❔')} {status}"
        if self.fmt == "terminal":
            return f"{_ANSI_STATUS.get(status, '')}{status.upper()}{_RESET}"
        return status.upper()


def style_for(fmt: str) -> Style:
    """The Style of a format name (unknown names fall back to plain text)."""
    return Style(fmt if fmt in FORMATS else "text")


def format_for_channel(channel: str) -> str:
    """The format a channel's reply text is written in."""
    return {"slack": "slack", "telegram": "telegram"}.get(channel, "text")


def fmt_duration(seconds: float | None) -> str:
    """45 s, 3.2 min, 2.5 h, 1.5 d; 'n/a' when unknown."""
    if seconds is None:
        return "n/a"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} %"


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _stamp(value: object) -> str:
    """An ISO time from a report, shown as '2026-12-04 20:24:18 UTC'."""
    try:
        return _when(datetime.fromisoformat(str(value)).astimezone(UTC))
    except ValueError:
        return str(value)


def _figure(s: Style, value: str, level: Level | None) -> str:
    marked = s.level(level)
    return f"{value} {marked}" if marked else value


def render_queue(report: QueueReport, fmt: str = "text") -> str:
    """The `/queue` report."""
    s = style_for(fmt)
    lines = [s.bold(f"Queue at {_when(report.generated_at)}")]
    arq = "" if report.arq_depth is None else f" (arq holds {report.arq_depth})"
    lines.append(f"Depth: {_figure(s, f'{report.depth} queued', report.depth_level)}{arq}")
    lines.append(f"In progress: {report.in_progress}")
    if report.oldest_queued_id is None:
        lines.append("Oldest waiting: none")
    else:
        lines.append(
            f"Oldest waiting: {fmt_duration(report.oldest_queued_age_s)} "
            f"(job {s.code(report.oldest_queued_id)})"
        )
    states = " · ".join(f"{name} {n}" for name, n in report.by_state.items())
    lines.append(f"Jobs by state: {states}")
    for source, per in sorted(report.by_source.items()):
        figures = ", ".join(f"{name} {n}" for name, n in per.items() if n)
        lines.append(f"  {source}: {figures or 'none'}")
    if report.processing:
        lines.append(s.bold("Processing now:"))
        for row in report.processing:
            lease = (
                "no lease"
                if row.lease_left_s is None
                else (
                    f"lease {fmt_duration(row.lease_left_s)} left"
                    if row.lease_left_s >= 0
                    else f"lease expired {fmt_duration(-row.lease_left_s)} ago"
                )
            )
            step = f" {s.esc(row.step)}" if row.step else ""
            lines.append(
                f"  {s.code(row.job_id)} {row.source} for {fmt_duration(row.age_s)}, "
                f"{row.progress}%{step} (attempt {row.attempts}/{row.max_attempts}, {lease})"
            )
    else:
        lines.append("Processing now: none")
    for window in report.windows:
        lines.extend(_window_lines(s, window))
    lines.append(
        "Modal cold start: "
        + _figure(s, fmt_duration(report.cold_start_s), report.cold_start_level)
    )
    lines.append(
        "Worker memory: " + _figure(s, _pct(report.worker_memory_pct), report.worker_memory_level)
    )
    if report.recent_failures:
        lines.append(s.bold("Latest failures (24 h):"))
        for failure in report.recent_failures:
            lines.append(
                f"  {s.code(failure.job_id)} {failure.source}, "
                f"{fmt_duration(failure.ended_ago_s)} ago: {s.esc(failure.error[:200])}"
            )
    for note in report.notes:
        lines.append(f"Note: {s.esc(note)}")
    lines.append(_legend(s))
    return "\n".join(lines)


def _window_lines(s: Style, w: WindowStats) -> list[str]:
    head = f"Last {w.label}: {w.completed} completed, {w.failed} failed"
    if not w.finished:
        return [f"{head} (no finished jobs: completion time and error rate n/a)"]
    return [
        head,
        f"  completion time p50 {_figure(s, fmt_duration(w.p50_s), w.p50_level)}"
        f" · p95 {_figure(s, fmt_duration(w.p95_s), w.p95_level)}",
        f"  error rate {_figure(s, _pct(w.error_rate_pct), w.error_rate_level)}",
    ]


def _legend(s: Style) -> str:
    parts = [
        THRESHOLDS[QUEUE_DEPTH].describe(),
        "completion " + THRESHOLDS[COMPLETION_TIME_S].describe(),
        "error rate " + THRESHOLDS[ERROR_RATE_PCT].describe(),
    ]
    return s.esc("Bands: " + "; ".join(parts))


_SERVICE_ORDER = ("redis", "database", "storage", "gpu", "workers", "queue")


def render_health(health: Mapping[str, Any], fmt: str = "text") -> str:
    """The `/health` report (the same dict GET /health returns)."""
    s = style_for(fmt)
    lines = [
        s.bold("Health:")
        + " "
        + s.status(str(health.get("status", "down")))
        + f" (version {s.esc(health.get('version', '?'))})"
    ]
    services: Mapping[str, Any] = health.get("services", {})
    for name in _SERVICE_ORDER:
        check = services.get(name)
        if not isinstance(check, Mapping):
            continue
        lines.append(_service_line(s, name, check))
    return "\n".join(lines)


def _service_line(s: Style, name: str, check: Mapping[str, Any]) -> str:
    status = str(check.get("status", "down"))
    latency = check.get("latency_ms")
    head = f"{s.status(status)} {s.bold(name)}"
    if latency is not None:
        head += f" {latency:.0f} ms"
    facts = _service_facts(name, check)
    error = check.get("error")
    if error:
        facts.insert(0, str(error))
    return head + (" - " + s.esc("; ".join(facts)) if facts else "")


def _service_facts(name: str, check: Mapping[str, Any]) -> list[str]:
    facts: list[str] = []
    if name == "redis" and check.get("arq_depth") is not None:
        facts.append(f"arq queue {check['arq_depth']}")
    elif name == "gpu":
        for key in ("backend", "device", "detail"):
            if check.get(key):
                facts.append(f"{key} {check[key]}")
        if "ffmpeg" in check:
            facts.append("ffmpeg found" if check["ffmpeg"] else "ffmpeg missing")
        problems = check.get("problems")
        if isinstance(problems, list) and problems:
            facts.append(", ".join(str(p) for p in problems))
    elif name == "workers" and "alive" in check:
        facts.append(f"{check['alive']} alive")
        if check.get("last_seen_s") is not None:
            facts.append(f"last seen {fmt_duration(check['last_seen_s'])} ago")
        if check.get("arq_health"):
            facts.append(f"arq: {check['arq_health']}")
        if check.get("max_memory_pct") is not None:
            facts.append(f"memory up to {check['max_memory_pct']:.0f} %")
    elif name == "queue" and check.get("depth") is not None:
        facts.append(
            f"{check['depth']} queued ({check.get('depth_level', '?')}), "
            f"{check.get('in_progress', 0)} in progress, oldest waiting "
            f"{fmt_duration(check.get('oldest_queued_age_s'))}"
        )
    return facts


def render_stuck(report: StuckReport, fmt: str = "text") -> str:
    """The `/retry-stuck` report."""
    s = style_for(fmt)
    title = "Retry stuck (dry run, nothing changed)" if report.dry_run else "Retry stuck"
    lines = [
        s.bold(title)
        + f": jobs processing over {fmt_duration(report.stuck_after_s)} or with an expired lease"
    ]
    if not report.actions:
        lines.append("No stuck jobs.")
        return "\n".join(lines)
    for a in report.actions:
        detail = f" ({s.esc(a.detail)})" if a.detail else ""
        lines.append(
            f"- {s.code(a.job_id)} {a.source}, {s.esc(a.reason)}, attempt "
            f"{a.attempts}/{a.max_attempts}: {s.bold(a.action)}{detail}"
        )
    lines.append(f"Summary: {report.summary()}")
    return "\n".join(lines)


def render_job(facts: Mapping[str, Any], fmt: str = "text") -> str:
    """The `/job <id>` report."""
    s = style_for(fmt)
    lines = [f"{s.bold('Job')} {s.code(facts['id'])}: {s.bold(str(facts['status']))}"]
    step = f" ({s.esc(facts['step'])})" if facts.get("step") else ""
    lines.append(f"Progress: {facts['progress']}%{step}")
    lines.append(f"Attempts: {facts['attempts']}/{facts['max_attempts']}")
    lines.append(f"Source: {facts['source']} from {s.esc(facts['requester'])}")
    if facts.get("input_filename"):
        lines.append(f"Input: {s.esc(facts['input_filename'])}")
    if facts.get("error_message"):
        lines.append(f"Error: {s.esc(facts['error_message'])}")
    lines.append(f"Created: {_stamp(facts['created_at'])} ({fmt_duration(facts['age_s'])} ago)")
    if facts.get("started_at"):
        waited = fmt_duration(facts["waited_s"])
        lines.append(f"Started: {_stamp(facts['started_at'])} (waited {waited})")
    if facts.get("completed_at"):
        total = fmt_duration(facts["total_s"])
        lines.append(f"Ended: {_stamp(facts['completed_at'])} (total {total})")
    if facts.get("processing_time_ms") is not None:
        lines.append(f"Processing time: {fmt_duration(facts['processing_time_ms'] / 1000)}")
    if facts.get("lease_owner"):
        lines.append(
            f"Worker: {s.esc(facts['lease_owner'])}, lease until {_stamp(facts['lease_expires_at'])}"
        )
    if facts.get("delivered_at"):
        lines.append(f"Delivered: {_stamp(facts['delivered_at'])}")
    return "\n".join(lines)


def render_refusal(channel: str, command: str, fmt: str = "text") -> str:
    """The clear no for someone who is not an operator."""
    s = style_for(fmt)
    shown = {"telegram": command.replace("-", "_")}.get(channel, command)
    if channel in ("slack", "telegram"):
        variable = f"{channel.upper()}_ADMIN_USER_IDS"
        return (
            f"Sorry, {s.code('/' + shown)} is for operators only. "
            f"Ask an admin to add your user id to {s.code(variable)}."
        )
    return s.esc(
        f"Sorry, ops commands cannot be run from {channel or 'here'}: "
        "use Slack, Telegram or `blanklogo ops`."
    )
