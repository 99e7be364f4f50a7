"""WhatsApp gateway: one WhatsApp account kept connected, its events sent to webhooks, its messages sent from an API."""

__version__ = "0.1.0"
