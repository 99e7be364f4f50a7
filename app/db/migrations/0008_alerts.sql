-- Alerts to the operator (ALERT_WEBHOOK_URL, Sentry): one row per incident, so that a restart neither repeats an alert
-- nor forgets one, and two processes never both send it; and how far the watch has read the session's trail.

CREATE TABLE alerts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind text NOT NULL,                 -- logged_out, banned, stopped, reconnecting, dead_letters, worker_memory
    opened_at timestamptz NOT NULL,     -- when it happened
    detail text NOT NULL,               -- the alert as sent: what happened, when, what to do
    notified_at timestamptz,            -- the alert was sent (or given up on); null: not yet (rate limit, failures)
    recovery text,                      -- the recovery message, written when the incident cleared
    recovery_notified_at timestamptz,
    cleared_at timestamptz,
    attempts integer NOT NULL DEFAULT 0,  -- failed sends of the message due (the alert, then its recovery)
    next_attempt_at timestamptz,
    last_error text
);
-- One open incident per kind: a second process opening the same one hits this and does nothing.
CREATE UNIQUE INDEX alerts_open ON alerts (kind) WHERE cleared_at IS NULL;

CREATE TABLE alert_watch (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    transition_id bigint NOT NULL,      -- the last row of session_transitions read
    disconnected_at timestamptz         -- when the session last left 'connected'; null while connected (or unknown)
);
