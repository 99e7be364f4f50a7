-- Messages other than text (issue 13): an image, video, audio (a voice note with ptt), document, sticker, location or
-- contact card, with what it carries in `content` (kind 'text' keeps its text in `text` and has no content; the other
-- kinds keep `text` ''). Any message may quote another one of its chat (reply_to). Existing rows stay as they are.
ALTER TABLE outgoing_messages DROP CONSTRAINT outgoing_messages_kind_check;
ALTER TABLE outgoing_messages ADD CONSTRAINT outgoing_messages_kind_check CHECK (kind IN (
    'text', 'image', 'video', 'audio', 'document', 'sticker', 'location', 'contact', 'reaction', 'edit', 'delete'
));
ALTER TABLE outgoing_messages DROP CONSTRAINT outgoing_messages_action_target;
ALTER TABLE outgoing_messages ADD CONSTRAINT outgoing_messages_action_target
    CHECK ((kind IN ('reaction', 'edit', 'delete')) = (target_id IS NOT NULL));
-- A file: {media_id, caption?, file_name?, mimetype, ptt?} (the bytes stay in `media`; the sender reads them when the
-- message's turn comes). A location: {latitude, longitude, name?, address?}. A contact: {name, vcard}.
ALTER TABLE outgoing_messages ADD COLUMN content jsonb;
ALTER TABLE outgoing_messages ADD CONSTRAINT outgoing_messages_content
    CHECK ((kind IN ('text', 'reaction', 'edit', 'delete')) = (content IS NULL));
-- The quoted message: WhatsApp's id, its sender's JID (null: this account) and, when it was received here and its
-- raw message is stored, that serialized waE2E.Message (WhatsApp shows the quote from it).
ALTER TABLE outgoing_messages ADD COLUMN reply_to text;
ALTER TABLE outgoing_messages ADD COLUMN reply_sender text;
ALTER TABLE outgoing_messages ADD COLUMN reply_quoted bytea;
