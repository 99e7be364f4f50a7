-- What WhatsApp answered when asked whether a phone number has an account (POST /api/contacts/check), kept for
-- CHECK_CACHE_DAYS so that asking again costs no look-up; the look-ups of the last hour (checked_at) also pace new
-- ones, across restarts.
CREATE TABLE contact_checks (
    phone text PRIMARY KEY,          -- E.164, '+<digits>'
    on_whatsapp boolean NOT NULL,
    jid text,                        -- where WhatsApp delivers to it; null when it is not on WhatsApp
    checked_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX contact_checks_checked_at ON contact_checks (checked_at);
