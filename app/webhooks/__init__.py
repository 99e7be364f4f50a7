"""Webhooks: incoming messages and events stored with an outbox event, then delivered signed, retried and in order."""
