-- Every kind of incoming event WhatsApp gives us (edits, deletes, reactions, poll votes, undecryptable messages,
-- calls, status posts), not only messages, is stored in incoming_messages once, with the webhook event it produced.

-- The webhook event type the row produced: message.received, message.from_me, message.edited, message.deleted,
-- message.reaction, message.poll_vote, message.undecryptable, call.received or status.posted.
ALTER TABLE incoming_messages ADD COLUMN event_type text NOT NULL DEFAULT 'message.received';
-- The message an edit, delete, reaction or poll vote is about.
ALTER TABLE incoming_messages ADD COLUMN target_id text;
-- The serialized waE2E.Message as WhatsApp sent it (null when the worker gave none, e.g. undecryptable, calls).
ALTER TABLE incoming_messages ADD COLUMN raw bytea;
-- A poll: {question, options, selectable_count}, so that later votes (which name options only by the SHA-256 of
-- their names) resolve to names in SQL/Python, without decoding `raw`. A poll vote: {selected, selected_hashes}.
ALTER TABLE incoming_messages ADD COLUMN poll jsonb;

COMMENT ON COLUMN incoming_messages.type IS
    'a message''s type (text, image, ..., poll, other); for other events: edit, delete, reaction, poll_vote, '
    'undecryptable, voice_call, video_call';
COMMENT ON COLUMN incoming_messages.text IS 'the text or caption; an edit''s new text; a reaction''s emoji';

-- The same WhatsApp id may legitimately come as two kinds of event: a message that could not be decrypted, then the
-- same message once the phone resends it. What WhatsApp redelivers (same chat, id and kind) still makes no event.
ALTER TABLE incoming_messages DROP CONSTRAINT incoming_messages_chat_message_id_key;
ALTER TABLE incoming_messages ADD CONSTRAINT incoming_messages_chat_message_id_event_type_key
    UNIQUE (chat, message_id, event_type);
-- A poll vote looks up its poll by (chat, message_id); the unique key above already serves that (leading columns).

-- Retention deletes by received_at (incoming_messages_received_at, from 0002); receipts get the same.
CREATE INDEX message_receipts_received_at ON message_receipts (received_at);
