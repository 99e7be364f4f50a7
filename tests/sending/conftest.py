"""The session fixtures (a database, supervisors with real simulator workers) for the sending tests."""

from tests.session.conftest import database, make_supervisor

__all__ = ["database", "make_supervisor"]
