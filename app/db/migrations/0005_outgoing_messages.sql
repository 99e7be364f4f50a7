-- The durable send queue: every message the API accepted, with its status history in columns.

CREATE TABLE outgoing_messages (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    recipient text NOT NULL,
    jid text NOT NULL,
    text text NOT NULL,
    status text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'sending', 'sent', 'delivered', 'read', 'failed', 'cancelled')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    whatsapp_id text,
    error text,
    idempotency_key text UNIQUE,
    request_hash text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz,
    delivered_at timestamptz,
    read_at timestamptz
);
-- The sender's claim: the oldest due queued message.
CREATE INDEX outgoing_messages_due ON outgoing_messages (next_attempt_at, created_at) WHERE status = 'queued';
-- Receipts name WhatsApp's ids.
CREATE INDEX outgoing_messages_whatsapp_id ON outgoing_messages (whatsapp_id) WHERE whatsapp_id IS NOT NULL;
-- Listing by status, newest first.
CREATE INDEX outgoing_messages_status_created ON outgoing_messages (status, created_at DESC);
