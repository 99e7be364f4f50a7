-- The session's audit trail, its current status, and the outbox of events for the webhook.

CREATE TABLE session_transitions (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    from_state text,
    to_state text NOT NULL,
    reason text NOT NULL,
    detail text,
    process text NOT NULL
);
CREATE INDEX session_transitions_at ON session_transitions (at);

-- One row: what the process holding the lease last said about the session.
CREATE TABLE session_status (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    state text NOT NULL,
    since timestamptz NOT NULL,
    reason text,
    account_jid text,
    push_name text,
    retry_at timestamptz,
    last_heartbeat_at timestamptz,
    heartbeat_ok boolean,
    process text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Every event for the webhook, written in the same transaction as what it describes.
CREATE TABLE outbox_events (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    type text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    chat text,
    data jsonb NOT NULL
);
CREATE INDEX outbox_events_created_at ON outbox_events (created_at);

-- The simulator backend's device store: a paired simulated account survives restarts like a real one.
CREATE TABLE simulator_devices (
    jid text PRIMARY KEY,
    push_name text,
    paired_at timestamptz NOT NULL DEFAULT now()
);
