-- bl_jobs: one row per video job (the source of truth; Redis only carries ids).
CREATE TABLE bl_jobs (
    id                 text PRIMARY KEY,
    source             text NOT NULL CHECK (source IN ('slack', 'telegram', 'webhook', 'cli')),
    requester          text NOT NULL,
    reply_to           jsonb NOT NULL DEFAULT '{}',
    status             text NOT NULL
                       CHECK (status IN ('queued', 'processing', 'completed', 'failed', 'cancelled')),
    progress           integer NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    current_step       text,
    options            jsonb NOT NULL DEFAULT '{}',
    input_key          text,
    input_filename     text,
    input_size_bytes   bigint,
    input_duration_sec double precision,
    output_key         text,
    output_size_bytes  bigint,
    attempts           integer NOT NULL DEFAULT 0,
    max_attempts       integer NOT NULL DEFAULT 3,
    lease_owner        text,
    lease_expires_at   timestamptz,
    error_message      text,
    processing_time_ms bigint,
    idempotency_key    text UNIQUE,
    delivered_at       timestamptz,
    created_at         timestamptz NOT NULL,
    started_at         timestamptz,
    completed_at       timestamptz,
    updated_at         timestamptz NOT NULL,
    expires_at         timestamptz NOT NULL,
    report             jsonb
);

CREATE INDEX bl_jobs_status_created_at_idx ON bl_jobs (status, created_at);
CREATE INDEX bl_jobs_created_at_idx ON bl_jobs (created_at);
CREATE INDEX bl_jobs_lease_expires_at_idx ON bl_jobs (lease_expires_at);
CREATE INDEX bl_jobs_completed_at_idx ON bl_jobs (completed_at);
CREATE INDEX bl_jobs_expires_at_idx ON bl_jobs (expires_at);

-- bl_audit: every operator command, allowed or refused.
CREATE TABLE bl_audit (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    actor   text NOT NULL,
    channel text NOT NULL,
    command text NOT NULL,
    args    text NOT NULL DEFAULT '',
    outcome text NOT NULL,
    detail  text NOT NULL DEFAULT ''
);

CREATE INDEX bl_audit_at_idx ON bl_audit (at);

-- On Supabase every table in `public` is reachable through its REST API with the anon
-- key; row level security with no policies closes that door. The service connects as
-- the tables' owner, which RLS does not restrict.
ALTER TABLE bl_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE bl_audit ENABLE ROW LEVEL SECURITY;
