-- Media that enters to be sent rather than with an incoming message: a file uploaded with POST /api/media, or
-- fetched from a `url` a send names (app/media/fetch.py). Such a row has no chat or message; `origin` says where the
-- file came from. The unique (chat, message_id) still makes a redelivered incoming message store its file once: rows
-- without a message hold NULLs there, which never conflict.
ALTER TABLE media ALTER COLUMN chat DROP NOT NULL;
ALTER TABLE media ALTER COLUMN message_id DROP NOT NULL;
ALTER TABLE media ADD COLUMN origin text NOT NULL DEFAULT 'incoming'
    CHECK (origin IN ('incoming', 'upload', 'fetched'));
-- An incoming file always names its message; an upload or a fetched file never does.
ALTER TABLE media ADD CONSTRAINT media_message_by_origin
    CHECK ((origin = 'incoming') = (chat IS NOT NULL AND message_id IS NOT NULL));
