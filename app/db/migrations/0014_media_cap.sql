-- MEDIA_MAX_TOTAL_BYTES: the retention loop removes the oldest files' bytes until the total is under the cap. The row
-- stays (without its bytes, with `removed` saying why) so that its links answer 410 Gone with that reason instead of
-- 404; it is deleted with the rest after MEDIA_RETENTION_DAYS.
ALTER TABLE media ALTER COLUMN bytes DROP NOT NULL;
ALTER TABLE media ADD COLUMN removed text;  -- why the bytes are gone; NULL while they are stored
CREATE INDEX media_kept_created_at ON media (created_at, id) WHERE removed IS NULL;
