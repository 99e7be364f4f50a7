-- Actions on messages go through the send queue as rows of their own, with statuses and message.status events:
-- a reaction (text = the emoji, '' removes it), an edit (text = the new text) or a delete for everyone (text '').
ALTER TABLE outgoing_messages ADD COLUMN kind text NOT NULL DEFAULT 'text'
    CHECK (kind IN ('text', 'reaction', 'edit', 'delete'));
-- The message acted on: WhatsApp's id, its sender (null: this account), and how the API named it (our id of a
-- message sent through the API, or WhatsApp's id of an incoming one).
ALTER TABLE outgoing_messages ADD COLUMN target_id text;
ALTER TABLE outgoing_messages ADD COLUMN target_sender text;
ALTER TABLE outgoing_messages ADD COLUMN target text;
ALTER TABLE outgoing_messages ADD CONSTRAINT outgoing_messages_action_target
    CHECK ((kind = 'text') = (target_id IS NULL));
