-- The simulated WhatsApp server's queue of what it holds for the linked device: a message stays here until the
-- worker has taken it, then it is gone (as whatsmeow acknowledges on receipt), so the next worker or process gets
-- whatever the previous one never received.
CREATE TABLE simulator_inbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL,             -- the backend event name (message, edited, reaction, receipt, call ...)
    data jsonb NOT NULL,
    accepted_at timestamptz NOT NULL DEFAULT now()
);
