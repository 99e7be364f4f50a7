"""Incoming-path tests share the webhook tests' fixtures: a database, real receivers and dispatchers."""

from tests.webhooks.conftest import database, make_dispatcher, receiver

__all__ = ["database", "make_dispatcher", "receiver"]
