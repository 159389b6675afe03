-- bl_jobs: one row per video job (the source of truth; Redis only carries ids).
-- Times are ISO 8601 text in UTC with microseconds ("2026-01-02T03:04:05.000006+00:00"),
-- fixed width, so that text order is time order. JSON columns hold JSON text.
CREATE TABLE bl_jobs (
    id                 TEXT PRIMARY KEY NOT NULL,
    source             TEXT NOT NULL CHECK (source IN ('slack', 'telegram', 'webhook', 'cli')),
    requester          TEXT NOT NULL,
    reply_to           TEXT NOT NULL DEFAULT '{}',
    status             TEXT NOT NULL
                       CHECK (status IN ('queued', 'processing', 'completed', 'failed', 'cancelled')),
    progress           INTEGER NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    current_step       TEXT,
    options            TEXT NOT NULL DEFAULT '{}',
    input_key          TEXT,
    input_filename     TEXT,
    input_size_bytes   INTEGER,
    input_duration_sec REAL,
    output_key         TEXT,
    output_size_bytes  INTEGER,
    attempts           INTEGER NOT NULL DEFAULT 0,
    max_attempts       INTEGER NOT NULL DEFAULT 3,
    lease_owner        TEXT,
    lease_expires_at   TEXT,
    error_message      TEXT,
    processing_time_ms INTEGER,
    idempotency_key    TEXT UNIQUE,
    delivered_at       TEXT,
    created_at         TEXT NOT NULL,
    started_at         TEXT,
    completed_at       TEXT,
    updated_at         TEXT NOT NULL,
    expires_at         TEXT NOT NULL,
    report             TEXT
);

CREATE INDEX bl_jobs_status_created_at_idx ON bl_jobs (status, created_at);
CREATE INDEX bl_jobs_created_at_idx ON bl_jobs (created_at);
CREATE INDEX bl_jobs_lease_expires_at_idx ON bl_jobs (lease_expires_at);
CREATE INDEX bl_jobs_completed_at_idx ON bl_jobs (completed_at);
CREATE INDEX bl_jobs_expires_at_idx ON bl_jobs (expires_at);

-- bl_audit: every operator command, allowed or refused.
CREATE TABLE bl_audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      TEXT NOT NULL,
    actor   TEXT NOT NULL,
    channel TEXT NOT NULL,
    command TEXT NOT NULL,
    args    TEXT NOT NULL DEFAULT '',
    outcome TEXT NOT NULL,
    detail  TEXT NOT NULL DEFAULT ''
);

CREATE INDEX bl_audit_at_idx ON bl_audit (at);
