"""Alerts to the operator when the session needs a person: incidents kept in Postgres, sent once to ALERT_WEBHOOK_URL
and Sentry, rate-limited, with a recovery message when they clear."""
