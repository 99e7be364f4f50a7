-- Every attempt to import a file-based WhatsApp login (a neonize/whatsmeow SQLite store) into Postgres.
-- whatsmeow's own tables get the copied rows; this table only says what happened, for /api/status and the operator.

CREATE TABLE auth_imports (
    id bigserial PRIMARY KEY,
    started_at timestamptz NOT NULL DEFAULT now(),
    -- a refusal repeated at every start (same file, same reason) updates its row instead of adding one per restart
    last_attempt_at timestamptz NOT NULL DEFAULT now(),
    attempts integer NOT NULL DEFAULT 1,
    trigger text NOT NULL CHECK (trigger IN ('start', 'cli')),
    outcome text NOT NULL CHECK (outcome IN ('imported', 'refused', 'failed')),
    reason text,  -- why not imported: a stable code such as version_mismatch, several_devices, corrupt, locked
    message text NOT NULL,
    source_path text NOT NULL,
    source_sha256 text,
    source_schema_version integer,
    store_schema_version integer,
    device_jid text,
    rows_per_table jsonb NOT NULL DEFAULT '{}',
    total_rows integer NOT NULL DEFAULT 0,
    duration_ms integer,
    process text NOT NULL
);
CREATE INDEX auth_imports_started_at ON auth_imports (started_at);
