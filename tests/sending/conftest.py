"""Fixtures the sending tests share with the session and web tests."""

from tests.session.conftest import database, make_supervisor
from tests.web.conftest import app_client

__all__ = ["app_client", "database", "make_supervisor"]
