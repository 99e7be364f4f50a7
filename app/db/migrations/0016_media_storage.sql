-- MEDIA_STORAGE_URL (s3://bucket/prefix): a file's bytes may live in an S3-compatible bucket instead of `bytes`. The
-- row keeps everything else and names the object; NULL means the bytes are (or were) in this table. A row keeps its
-- key after the total cap removed the object (`removed` says so), so the key of every object ever stored is known.
ALTER TABLE media ADD COLUMN object_key text;
