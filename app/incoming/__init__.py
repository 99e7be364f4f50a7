"""Everything WhatsApp gives us, from the worker's channel to the outbox: stored once, with its webhook event."""
