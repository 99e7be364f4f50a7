-- Incoming media whose download failed for a transient reason (a network error, a timeout, a 5xx from WhatsApp's
-- CDN): the web process asks the worker to download it again, with a backoff, a bounded number of times
-- (app/incoming/media_retry.py). What the worker needs for that (the media keys) is the message's stored `raw`.
CREATE TABLE media_downloads (
    chat text NOT NULL,
    message_id text NOT NULL,
    tries integer NOT NULL DEFAULT 1,  -- downloads tried so far, the one on arrival included
    next_at timestamptz NOT NULL,      -- when the next try is due
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chat, message_id)
);
CREATE INDEX media_downloads_next_at ON media_downloads (next_at);
