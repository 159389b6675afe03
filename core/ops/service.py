"""Run one operator command: admin gate, the work, the audit row, the reply.

Who may run commands: channel "slack" -> SLACK_ADMIN_USER_IDS, "telegram" ->
TELEGRAM_ADMIN_USER_IDS, "cli" -> always (whoever can run `blanklogo ops` already holds
the service's credentials). Any other channel ("http" included) is refused. Every call,
allowed or refused, writes one audit row; a failing audit write is logged and never
blocks the reply (`/health` must answer while the database is down).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from core.errors import QueueError
from core.health import check_health, gather_queue_report
from core.jobs import Job, JobState
from core.ops.commands import (
    COMMAND_CHANNELS,
    OpsReply,
    OpsRequest,
    ParsedCommand,
    UsageError,
    normalize_command,
    parse_command,
)
from core.ops.render import (
    format_for_channel,
    render_health,
    render_job,
    render_queue,
    render_refusal,
    render_stuck,
    style_for,
)
from core.ops.reports import StuckAction, StuckReport, job_facts, stuck_reason
from core.ports import AuditEntry

if TYPE_CHECKING:
    from core.deps import Deps
    from core.settings import Settings

logger = logging.getLogger(__name__)

AUDIT_TIMEOUT_S = 3.0
_AUDIT_ARGS_MAX = 200


@dataclass(frozen=True)
class Outcome:
    """A command's reply plus the one-line detail for its audit row."""

    reply: OpsReply
    detail: str


def utcnow() -> datetime:
    return datetime.now(UTC)


def bare_actor(channel: str, actor: str) -> str:
    """'slack:U123' or 'U123' -> 'U123' (the id the allowlists hold)."""
    actor = (actor or "").strip()
    prefix = f"{channel}:"
    return actor[len(prefix) :] if actor.startswith(prefix) else actor


def is_operator(settings: Settings, channel: str, actor_id: str) -> bool:
    """Whether `actor_id` may run ops commands from `channel`."""
    if channel == "cli":
        return True
    if channel == "slack":
        return bool(actor_id) and actor_id in settings.slack_admin_user_ids
    if channel == "telegram":
        return bool(actor_id) and actor_id in settings.telegram_admin_user_ids
    return False


async def handle_command(deps: Deps, request: OpsRequest) -> OpsReply:
    """Gate, run, audit and render one operator command in its channel's format."""
    return await execute(deps, request, format_for_channel(request.channel.strip().lower()))


async def execute(
    deps: Deps, request: OpsRequest, fmt: str, *, now: datetime | None = None
) -> OpsReply:
    """`handle_command` with an explicit output format (the terminal uses "terminal")."""
    channel = request.channel.strip().lower()
    actor_id = bare_actor(channel, request.actor)
    name = normalize_command(request.command)
    args = (request.args or "").strip()
    audit_actor = f"{channel}:{actor_id or '?'}"
    if channel not in COMMAND_CHANNELS or not is_operator(deps.settings, channel, actor_id):
        logger.info("ops %s refused for %s on %s", name, audit_actor, channel)
        await _audit(deps, audit_actor, channel, name, args, "refused", "not an operator")
        text = render_refusal(channel, name, fmt)
        return OpsReply(text, ok=False, data={"command": name, "refused": True})
    try:
        parsed = parse_command(request.command, args)
    except UsageError as exc:
        await _audit(deps, audit_actor, channel, name, args, "error", f"usage: {exc}"[:200])
        return OpsReply(
            style_for(fmt).esc(str(exc)), ok=False, data={"command": name, "usage": True}
        )
    try:
        outcome = await _run(deps, parsed, fmt, now or utcnow(), audit_actor)
    except Exception as exc:  # noqa: BLE001 - the operator gets words, the log the trace
        logger.exception("ops %s failed", parsed.name)
        reason = f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__
        text = style_for(fmt).esc(f"{parsed.name} failed: {reason[:300]}")
        await _audit(deps, audit_actor, channel, parsed.name, args, "error", reason[:300])
        return OpsReply(text, ok=False, data={"command": parsed.name, "error": reason[:300]})
    result = "ok" if outcome.reply.ok else "error"
    logger.info("ops %s by %s: %s", parsed.name, audit_actor, outcome.detail)
    await _audit(deps, audit_actor, channel, parsed.name, args, result, outcome.detail)
    return outcome.reply


async def _audit(
    deps: Deps, actor: str, channel: str, command: str, args: str, outcome: str, detail: str
) -> None:
    entry = AuditEntry(
        actor=actor,
        channel=channel,
        command=command[:40],
        args=args[:_AUDIT_ARGS_MAX],
        outcome=outcome,
        detail=detail,
    )
    try:
        await asyncio.wait_for(deps.store.record_audit(entry), AUDIT_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - never let the audit block the reply
        logger.warning("audit row for %s %s not written: %s", actor, command, exc)


async def _run(deps: Deps, cmd: ParsedCommand, fmt: str, now: datetime, actor: str) -> Outcome:
    if cmd.name == "health":
        return await _health(deps, fmt, now)
    if cmd.name == "queue":
        report = await gather_queue_report(deps, now)
        detail = f"depth {report.depth} ({report.depth_level.value})"
        return Outcome(OpsReply(render_queue(report, fmt), True, report.to_dict()), detail)
    if cmd.name == "retry-stuck":
        stuck = await retry_stuck(deps, now=now, minutes=cmd.minutes, dry_run=cmd.dry_run)
        text = render_stuck(stuck, fmt)
        return Outcome(OpsReply(text, True, stuck.to_dict()), stuck.summary())
    assert cmd.job_id is not None
    job = await deps.store.get(cmd.job_id)
    if job is None:
        text = style_for(fmt).esc(f"No job with id {cmd.job_id}.")
        return Outcome(OpsReply(text, False, {"id": cmd.job_id, "found": False}), "no such job")
    if cmd.name == "job":
        facts = job_facts(job, now)
        return Outcome(OpsReply(render_job(facts, fmt), True, facts), f"status {job.status}")
    if cmd.name == "retry":
        return await _retry(deps, job, fmt, actor)
    return await _cancel(deps, job, fmt, actor)


async def _health(deps: Deps, fmt: str, now: datetime) -> Outcome:
    health = await check_health(deps, now=now)
    failing = [n for n, c in health["services"].items() if c.get("status") != "ok"]
    detail = f"status {health['status']}" + (f" ({', '.join(failing)})" if failing else "")
    reply = OpsReply(render_health(health, fmt), health["status"] != "down", health)
    return Outcome(reply, detail)


async def _enqueue_run(deps: Deps, job: Job) -> str:
    """Queue the next run; when Redis refuses, the reconciler will queue the row later."""
    try:
        await deps.queue.enqueue_run(job.id, job.attempts + 1)
    except QueueError as exc:
        logger.warning("job %s: not queued in arq (%s); the reconciler will", job.id, exc)
        return "queued in the database; Redis refused it, the reconciler will queue it"
    return ""


async def _enqueue_delivery(deps: Deps, job_id: str) -> str:
    """Tell the requester their job ended (delivery is guarded, so twice is harmless)."""
    try:
        await deps.queue.enqueue_delivery(job_id, 0)
    except QueueError as exc:
        logger.warning("job %s: delivery not queued (%s)", job_id, exc)
        return "the requester could not be told yet (Redis refused the delivery)"
    return ""


async def retry_stuck(
    deps: Deps,
    *,
    now: datetime | None = None,
    minutes: float | None = None,
    dry_run: bool = False,
) -> StuckReport:
    """Requeue (or fail, when out of attempts) every job processing too long or with an expired lease.

    Each move is conditional on the job still being `processing` under the owner we saw,
    so two runs at once (or a run racing the reaper) never requeue a job twice.
    """
    now = now or utcnow()
    after_s = int(minutes * 60) if minutes else deps.settings.stuck_after_seconds
    started_before = now - timedelta(seconds=after_s)
    actions = []
    for job in await deps.store.stuck_jobs(started_before, now):
        actions.append(await _settle_stuck(deps, job, now, started_before, dry_run))
    return StuckReport(dry_run=dry_run, stuck_after_s=after_s, actions=actions)


async def _settle_stuck(
    deps: Deps, job: Job, now: datetime, started_before: datetime, dry_run: bool
) -> StuckAction:
    reason = stuck_reason(job, now, started_before)
    out_of_attempts = job.attempts >= job.max_attempts

    def action(name: str, detail: str = "", seen: Job = job) -> StuckAction:
        return StuckAction(
            job_id=seen.id,
            source=seen.source.value,
            reason=reason,
            action=name,
            attempts=seen.attempts,
            max_attempts=seen.max_attempts,
            detail=detail,
        )

    if dry_run:
        return action("would fail" if out_of_attempts else "would requeue")
    if out_of_attempts:
        moved = await deps.store.move(
            job.id,
            JobState.FAILED,
            expected=[JobState.PROCESSING],
            owner=job.lease_owner,
            error_message=(
                f"Stopped: the job was stuck ({reason}) and had used all "
                f"{job.max_attempts} attempts; failed by an operator's /retry-stuck"
            ),
        )
        if moved is None:
            return action("skipped", "it changed state meanwhile")
        return action("failed", await _enqueue_delivery(deps, job.id))
    # not core.processing.requeue: that one only logs a run Redis refused, whereas the
    # operator is told here (the action's detail)
    moved = await deps.store.move(
        job.id,
        JobState.QUEUED,
        expected=[JobState.PROCESSING],
        owner=job.lease_owner,
        current_step="waiting to retry",
        error_message=f"attempt {job.attempts}: stuck ({reason}); requeued by an operator",
    )
    if moved is None:
        return action("skipped", "it changed state meanwhile")
    return action("requeued", await _enqueue_run(deps, moved))


async def _retry(deps: Deps, job: Job, fmt: str, actor: str) -> Outcome:
    s = style_for(fmt)
    if job.status not in (JobState.FAILED, JobState.CANCELLED):
        text = s.esc(
            f"Job {job.id} is {job.status.value}; only failed or cancelled jobs can be retried."
        )
        return Outcome(
            OpsReply(text, False, job_facts(job, utcnow())), f"not retried: {job.status}"
        )
    moved = await deps.store.move(
        job.id,
        JobState.QUEUED,
        expected=[JobState.FAILED, JobState.CANCELLED],
        # a fresh set of tries on top of those already spent
        max_attempts=job.attempts + deps.settings.max_attempts,
        error_message=None,
        progress=0,
        current_step=f"retried by {actor}",
    )
    if moved is None:
        current = await deps.store.get(job.id)
        state = "gone" if current is None else current.status.value
        text = s.esc(f"Job {job.id} changed state meanwhile (now {state}); nothing done.")
        return Outcome(OpsReply(text, False, {"id": job.id}), f"not retried: now {state}")
    note = await _enqueue_run(deps, moved)
    text = s.esc(
        f"Job {job.id} ({job.status.value}) is back in the queue: attempt "
        f"{moved.attempts + 1} of {moved.max_attempts}." + (f" Note: {note}." if note else "")
    )
    data: dict[str, Any] = job_facts(moved, utcnow()) | {"previous_status": job.status.value}
    return Outcome(OpsReply(text, True, data), f"requeued from {job.status.value}")


async def _cancel(deps: Deps, job: Job, fmt: str, actor: str) -> Outcome:
    s = style_for(fmt)
    if job.status not in (JobState.QUEUED, JobState.PROCESSING):
        text = s.esc(f"Job {job.id} is already {job.status.value}; nothing to cancel.")
        return Outcome(
            OpsReply(text, False, job_facts(job, utcnow())), f"not cancelled: {job.status}"
        )
    moved = await deps.store.move(
        job.id,
        JobState.CANCELLED,
        expected=[JobState.QUEUED, JobState.PROCESSING],
        error_message="Cancelled by an operator.",
        current_step=f"cancelled by {actor}",
    )
    if moved is None:
        current = await deps.store.get(job.id)
        state = "gone" if current is None else current.status.value
        text = s.esc(f"Job {job.id} changed state meanwhile (now {state}); nothing done.")
        return Outcome(OpsReply(text, False, {"id": job.id}), f"not cancelled: now {state}")
    note = await _enqueue_delivery(deps, job.id)
    how = (
        "the worker stops at its next heartbeat"
        if job.status == JobState.PROCESSING
        else "it will not run"
    )
    text = s.esc(
        f"Job {job.id} cancelled (was {job.status.value}; {how})."
        + (f" Note: {note}." if note else "")
    )
    data = job_facts(moved, utcnow()) | {"previous_status": job.status.value}
    return Outcome(OpsReply(text, True, data), f"cancelled (was {job.status.value})")
