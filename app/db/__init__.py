"""Postgres: the connection pool, driver-error translation, schema migrations and the embedded local server."""
