"""Local runs: with no DATABASE_URL and not deployed, an embedded Postgres and generated secrets under DATA_DIR.

A deployed app never gets here: settings refuse to load there without DATABASE_URL and the secrets.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import secrets
from typing import Any

from app.db.embedded import EmbeddedPostgres
from app.settings import Settings, resolve_database_url

log = logging.getLogger(__name__)

GENERATED = ("admin_password", "api_token", "secret_key")


def prepare_local(settings: Settings) -> Settings:
    """Fill in what a local run may leave unset; return the settings to run with."""
    if settings.deployed:
        return settings
    changes: dict[str, Any] = {}
    if settings.database_url is None:
        server = EmbeddedPostgres(settings.data_dir / "postgres", settings.xdg_runtime_dir)
        changes["database_url"] = resolve_database_url(server.url())
        log.info("using the embedded Postgres in %s", server.data_dir)
    missing = [name for name in GENERATED if getattr(settings, name) is None]
    if missing:
        changes.update({name: value for name, value in _local_secrets(settings).items() if name in missing})
    return dataclasses.replace(settings, **changes)


def _local_secrets(settings: Settings) -> dict[str, str]:
    """Secrets generated on the first local run and kept (mode 0600) so the login stays the same across runs."""
    path = settings.data_dir / "local-secrets.json"
    if path.exists():
        stored: dict[str, str] = json.loads(path.read_text())
        if all(name in stored for name in GENERATED):
            return stored
    generated = {name: secrets.token_urlsafe(24 if name != "admin_password" else 12) for name in GENERATED}
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps(generated, indent=2))
    return generated


def login_banner(settings: Settings, original: Settings) -> str | None:
    """What to tell the person at the terminal once the app serves: where the page is and how to log in (the
    secrets that were generated for this machine). None when deployed: there, nobody is at a terminal."""
    if settings.deployed:
        return None
    lines = [f"WhatsApp gateway: open http://localhost:{settings.port}/"]
    if original.admin_password is None:
        lines.append(f"  login password: {settings.admin_password}")
    if original.api_token is None:
        lines.append(f"  API token:      {settings.api_token}")
    if len(lines) > 1:
        lines.append(f"  (generated for local use, kept in {settings.data_dir / 'local-secrets.json'})")
    return "\n".join(lines)
