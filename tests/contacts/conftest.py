"""The contacts tests run the app in-process, as the web tests do."""

from tests.web.conftest import app_client

__all__ = ["app_client"]
