-- A queued message may ask for a typing indicator before it is sent (true), refuse one (false), or leave it to
-- SEND_TYPING_SECONDS (null).
ALTER TABLE outgoing_messages ADD COLUMN typing boolean;
