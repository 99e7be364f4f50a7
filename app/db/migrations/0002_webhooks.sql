-- Webhook delivery: incoming messages and receipts as stored, the endpoints (WEBHOOK_URL entries), and one delivery
-- row per event and endpoint that the dispatcher claims, retries and finally marks delivered or dead.

-- Events are delivered in this order within a chat; the identity follows insertion order, the uuid does not.
ALTER TABLE outbox_events ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;

-- Every message WhatsApp gave us, once: a redelivered message hits the unique key and makes no second event.
CREATE TABLE incoming_messages (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chat text NOT NULL,
    message_id text NOT NULL,
    sender text,                    -- E.164 ('+...'); null when WhatsApp gives no phone number (LID senders)
    sender_jid text,
    push_name text,
    type text NOT NULL,             -- text, image, video, audio, document, sticker, location, contact, other
    text text,                      -- the text, or the caption of a media message
    media jsonb,                    -- {mimetype, size, file_name} of a media message
    is_group boolean NOT NULL DEFAULT false,
    is_from_me boolean NOT NULL DEFAULT false,  -- typed on the account's phone (or another linked device)
    sent_at timestamptz,            -- WhatsApp's timestamp of the message
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (chat, message_id)
);
CREATE INDEX incoming_messages_received_at ON incoming_messages (received_at);

-- Delivery receipts of messages this account sent; a receipt WhatsApp repeats makes no second event.
CREATE TABLE message_receipts (
    chat text NOT NULL,
    message_id text NOT NULL,
    status text NOT NULL,           -- delivered, read, played
    at timestamptz,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chat, message_id, status)
);

-- One row per WEBHOOK_URL entry ever configured; entries no longer configured stay, inactive, with their history.
CREATE TABLE webhook_endpoints (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url text NOT NULL UNIQUE,
    active boolean NOT NULL DEFAULT true,
    paused_at timestamptz,          -- the receiver answered 410 Gone: nothing is sent until an operator resumes it
    paused_reason text,
    last_success_at timestamptz,
    last_error_at timestamptz,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The delivery of one event to one endpoint.
--   pending    due for an attempt at next_attempt_at (the first one, or a retry released by the dispatcher)
--   delivering claimed by the dispatcher holding the dispatch lock; a new holder puts these back to pending
--   failed     the last attempt failed; the next one is at next_attempt_at; it holds up later events of its lane
--   waiting    behind a failed delivery of the same lane (chat); becomes pending when that one is resolved
--   delivered  a 2xx came back
--   dead       failed for longer than the retry window; replayable through the API
CREATE TABLE webhook_deliveries (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id uuid NOT NULL REFERENCES outbox_events (id) ON DELETE CASCADE,
    endpoint_id integer NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    seq bigint NOT NULL,            -- the event's seq
    lane text NOT NULL,             -- the chat, or 'session': deliveries of one lane and endpoint go out in seq order
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'delivering', 'failed', 'waiting', 'delivered', 'dead')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    window_start timestamptz NOT NULL DEFAULT now(),  -- retries stop (dead) a fixed time after this
    claimed_by uuid,
    last_attempt_at timestamptz,
    last_status integer,            -- HTTP status of the last attempt; null when no answer came
    last_error text,
    delivered_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, endpoint_id)
);
-- What the claim scans, per endpoint in seq order: only deliveries that may be due.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (endpoint_id, seq) WHERE status IN ('pending', 'failed');
-- What holds a lane up.
CREATE INDEX webhook_deliveries_held ON webhook_deliveries (endpoint_id, lane, seq) WHERE status IN ('failed', 'waiting');
-- Listings and counts by status.
CREATE INDEX webhook_deliveries_status ON webhook_deliveries (status, id);
