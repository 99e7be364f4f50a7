"""Media tests use the webhook tests' database fixture."""

from tests.webhooks.conftest import database

__all__ = ["database"]
