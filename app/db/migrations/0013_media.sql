-- The content of incoming media (images, video, audio and voice notes, documents, stickers), downloaded by the worker
-- when the message arrives and kept here, in Postgres, so that no extra add-on is needed. Not a foreign key to
-- incoming_messages: retention deletes the two on their own clocks (MESSAGE_RETENTION_DAYS, MEDIA_RETENTION_DAYS).
CREATE TABLE media (
    id uuid PRIMARY KEY,
    chat text NOT NULL,          -- the incoming message's chat and WhatsApp id
    message_id text NOT NULL,
    mimetype text NOT NULL,
    size bigint NOT NULL,
    sha256 text NOT NULL,        -- hex, checked against the message's fileSHA256 before it is stored
    file_name text,
    bytes bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (chat, message_id)    -- a redelivered message stores its media once
);
-- bytea is TOASTed out of line and compressed only when it helps; media is mostly already compressed.
ALTER TABLE media ALTER COLUMN bytes SET STORAGE EXTERNAL;
CREATE INDEX media_created_at ON media (created_at);
