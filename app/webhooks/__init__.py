"""Webhooks: delivery of outbox events to the configured endpoints, signed, retried, in order per chat."""
