"""What both SQL stores share: the columns of `bl_jobs`, row ↔ Job mapping, and the SQL
of every conditional update, built once and rendered for either database's dialect.

A `Dialect` says how the database spells a parameter and how it keeps times and JSON;
a `Query` collects parameters in order and hands out the right placeholders.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from core.errors import IllegalTransition
from core.jobs import TERMINAL_STATES, Job, JobState, Source, sources_of, transition
from core.ports import AuditEntry, FinishedJob

JOB_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Job))
JSON_COLUMNS = frozenset({"reply_to", "options", "report"})
TIME_COLUMNS = frozenset(
    {
        "created_at",
        "updated_at",
        "expires_at",
        "lease_expires_at",
        "delivered_at",
        "delivery_claimed_at",
        "started_at",
        "completed_at",
        "at",  # bl_audit
    }
)
#: columns `move(**fields)` may set; status goes through the state machine, id never changes
MOVABLE_COLUMNS = frozenset(JOB_COLUMNS) - {"id", "status", "source", "created_at"}
AUDIT_COLUMNS = ("id", "at", "actor", "channel", "command", "args", "outcome", "detail")


def utc(value: datetime) -> datetime:
    """The same instant as an aware UTC datetime (a naive one is taken to be UTC already)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def utcnow() -> datetime:
    """Now, aware, in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Dialect:
    """How one database spells parameters and stores times and JSON."""

    name: str
    placeholder: Callable[[int], str]
    encode_time: Callable[[datetime], Any]
    decode_time: Callable[[Any], datetime]

    def encode(self, column: str, value: Any) -> Any:
        """A Python value as this database takes it for `column`."""
        if value is None:
            return None
        if column in JSON_COLUMNS:
            return json.dumps(value, separators=(",", ":"), sort_keys=True, default=_plain)
        if column in TIME_COLUMNS:
            return self.encode_time(utc(value))
        if isinstance(value, JobState | Source):
            return value.value
        return value

    def decode(self, column: str, value: Any) -> Any:
        """A value read from `column` as the Job field wants it."""
        if value is None:
            return None
        if column in JSON_COLUMNS:
            return json.loads(value) if isinstance(value, str | bytes) else value
        if column in TIME_COLUMNS:
            return self.decode_time(value)
        return value


def _plain(value: Any) -> Any:
    """JSON for what json cannot write itself: numpy scalars and arrays, paths, times."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, datetime):
        return utc(value).isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def _iso(value: datetime) -> str:
    # fixed width, always +00:00: lexical order is time order, so SQLite compares them in SQL
    return utc(value).isoformat(timespec="microseconds")


def _from_iso(value: Any) -> datetime:
    return utc(datetime.fromisoformat(value))


POSTGRES = Dialect("postgres", lambda n: f"${n}", utc, utc)
SQLITE = Dialect("sqlite", lambda n: "?", _iso, _from_iso)


class Query:
    """Parameters in order, with the placeholder text for each one."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.params: list[Any] = []
        self.sql = ""

    def param(self, value: Any, column: str | None = None) -> str:
        """Add a parameter (encoded for `column` when given); return its placeholder."""
        self.params.append(self.dialect.encode(column, value) if column else value)
        return self.dialect.placeholder(len(self.params))

    def in_list(self, column: str, values: Iterable[Any]) -> str:
        """`column IN (...)` over the values; a false condition for an empty list."""
        items = [self.param(v.value if isinstance(v, JobState | Source) else v) for v in values]
        if not items:
            return "1 = 0"
        return f"{column} IN ({', '.join(items)})"


def row_to_job(row: Mapping[str, Any], dialect: Dialect) -> Job:
    """One `bl_jobs` row as a Job."""
    values = {col: dialect.decode(col, row[col]) for col in JOB_COLUMNS}
    values["status"] = JobState(values["status"])
    values["source"] = Source(values["source"])
    values["reply_to"] = values["reply_to"] or {}
    values["options"] = values["options"] or {}
    return Job(**values)


def row_to_finished(row: Mapping[str, Any], dialect: Dialect) -> FinishedJob:
    """The figures of an ended job."""
    return FinishedJob(
        id=row["id"],
        source=Source(row["source"]),
        status=JobState(row["status"]),
        created_at=dialect.decode("created_at", row["created_at"]),
        started_at=dialect.decode("started_at", row["started_at"]),
        completed_at=dialect.decode("completed_at", row["completed_at"]),
    )


def row_to_audit(row: Mapping[str, Any], dialect: Dialect) -> AuditEntry:
    """One `bl_audit` row."""
    return AuditEntry(
        id=int(row["id"]),
        at=dialect.decode("at", row["at"]),
        actor=row["actor"],
        channel=row["channel"],
        command=row["command"],
        args=row["args"],
        outcome=row["outcome"],
        detail=row["detail"],
    )


def insert_job(job: Job, dialect: Dialect) -> Query:
    """INSERT of a new row that does nothing when its id or idempotency key is known."""
    q = Query(dialect)
    values = ", ".join(q.param(getattr(job, col), col) for col in JOB_COLUMNS)
    q.sql = (
        f"INSERT INTO bl_jobs ({', '.join(JOB_COLUMNS)}) VALUES ({values}) ON CONFLICT DO NOTHING"
    )
    return q


def claim_update(
    job_id: str, owner: str, lease_until: datetime, now: datetime, dialect: Dialect
) -> Query:
    """queued → processing for `owner`, attempts + 1, started now, lease until `lease_until`."""
    transition(JobState.QUEUED, JobState.PROCESSING)
    q = Query(dialect)
    q.sql = (
        f"UPDATE bl_jobs SET status = {q.param(JobState.PROCESSING.value)},"
        f" lease_owner = {q.param(owner)},"
        f" lease_expires_at = {q.param(lease_until, 'lease_expires_at')},"
        f" attempts = attempts + 1,"
        f" started_at = {q.param(now, 'started_at')},"
        f" updated_at = {q.param(now, 'updated_at')}"
        f" WHERE id = {q.param(job_id)} AND status = {q.param(JobState.QUEUED.value)}"
    )
    return q


def heartbeat_update(
    job_id: str,
    owner: str,
    lease_until: datetime,
    now: datetime,
    progress: int | None,
    step: str | None,
    dialect: Dialect,
) -> Query:
    """Renew `owner`'s lease on a processing job, recording progress and step when given."""
    q = Query(dialect)
    sets = [
        f"lease_expires_at = {q.param(lease_until, 'lease_expires_at')}",
        f"updated_at = {q.param(now, 'updated_at')}",
    ]
    if progress is not None:
        sets.append(f"progress = {q.param(max(0, min(100, int(progress))))}")
    if step is not None:
        sets.append(f"current_step = {q.param(step)}")
    q.sql = (
        f"UPDATE bl_jobs SET {', '.join(sets)}"
        f" WHERE id = {q.param(job_id)} AND status = {q.param(JobState.PROCESSING.value)}"
        f" AND lease_owner = {q.param(owner)}"
    )
    return q


def move_update(
    job_id: str,
    target: JobState,
    now: datetime,
    dialect: Dialect,
    *,
    expected: Iterable[JobState] | None = None,
    owner: str | None = None,
    lease_expired_before: datetime | None = None,
    fields: Mapping[str, Any] | None = None,
) -> Query:
    """The conditional UPDATE behind `JobStore.move` (see its docstring for the rules).

    Raises IllegalTransition when a state in `expected` may not reach `target`, and
    ValueError for a field that is not a settable column.
    """
    target = JobState(target)
    sources = sources_of(target) if expected is None else frozenset(map(JobState, expected))
    for source in sources:
        transition(source, target)
    if not sources:
        raise IllegalTransition(f"no state may become {target.value}")
    given = dict(fields or {})
    unknown = set(given) - MOVABLE_COLUMNS
    if unknown:
        raise ValueError(f"move cannot set {', '.join(sorted(unknown))}")

    changes: dict[str, Any] = {}
    if target is not JobState.PROCESSING:  # leaving processing (or never in it): no lease
        changes |= {"lease_owner": None, "lease_expires_at": None}
    if target in TERMINAL_STATES:
        changes["completed_at"] = now
    if target is JobState.QUEUED:  # a fresh run: it ends, and is delivered, anew
        changes |= {"completed_at": None, "delivered_at": None, "delivery_claimed_at": None}
    changes |= given
    changes["updated_at"] = now

    q = Query(dialect)
    sets = [f"status = {q.param(target.value)}"]
    sets += [f"{col} = {q.param(value, col)}" for col, value in changes.items()]
    where = [f"id = {q.param(job_id)}", q.in_list("status", sorted(sources))]
    if owner is not None:
        where.append(f"lease_owner = {q.param(owner)}")
    if lease_expired_before is not None:
        where.append(f"lease_expires_at < {q.param(lease_expired_before, 'lease_expires_at')}")
    q.sql = f"UPDATE bl_jobs SET {', '.join(sets)} WHERE {' AND '.join(where)}"
    return q
