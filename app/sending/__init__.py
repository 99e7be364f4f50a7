"""Sending: the durable, rate-limited queue of outgoing messages and the one loop that hands them to WhatsApp."""
