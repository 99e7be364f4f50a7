"""Alert tests: simulator supervisors and a database from the session tests, real receivers from the webhook tests."""

from tests.session.conftest import database, make_supervisor
from tests.webhooks.conftest import receiver

__all__ = ["database", "make_supervisor", "receiver"]
