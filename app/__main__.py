"""Command line: `python -m app` serves; `python -m app migrate` applies the schema migrations;
`python -m app migrate-auth PATH` imports a file-based WhatsApp login into Postgres; `python -m app status` prints
what the page shows."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.settings import Settings

log = logging.getLogger("app")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="python -m app",
        description="WhatsApp gateway. Configuration comes from the environment (see README.md). "
        "Exit status: 0 success, 1 invalid configuration or failure "
        "(migrate-auth has more: python -m app migrate-auth --help).",
    )
    commands = root.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("serve", help="serve the web app and keep the WhatsApp session (the default)")
    commands.add_parser("migrate", help="apply pending database migrations and exit (the release phase)")
    commands.add_parser(
        "status",
        help="print what the page shows, read from the database (works from `heroku run`); "
        "exit 0 if the session is connected, 1 if not, 2 if the database cannot be reached",
    )
    from app.authimport.cli import add_parser as add_migrate_auth

    add_migrate_auth(commands)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from app.asgi import bootstrap, load_or_exit

    original = load_or_exit()
    settings = bootstrap(original)
    if args.command == "migrate":
        return migrate(settings.database_url)
    if args.command == "status":
        from app.status_command import run

        return run(settings)
    if args.command == "migrate-auth":
        from app.authimport.cli import migrate_auth

        assert settings.database_url
        return migrate_auth(settings.database_url, args.path, dry_run=args.dry_run, jid=args.jid)
    from app.local import login_banner

    return serve(settings, login_banner(settings, original))


def migrate(database_url: str | None) -> int:
    from app.db.database import start_failure
    from app.db.migrations import migrate_url

    assert database_url
    try:
        applied = asyncio.run(migrate_url(database_url))
    except Exception as error:
        reason = start_failure(database_url, error)
        if reason is None:
            raise  # not about the database: a bug, whose traceback is worth having
        log.error("migration failed: %s", reason)
        return 1
    log.info("database schema up to date (%d migration(s) applied)", len(applied))
    return 0


def serve(settings: Settings, banner: str | None) -> int:
    import uvloop
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config
    from hypercorn.utils import LifespanFailureError

    import app.main as composition
    from app.asgi import behind_router

    config = Config.from_object("app.hypercorn_config")
    # Deployed: every interface, like the Procfile. Locally: loopback only, the page is for this machine.
    config.bind = [f"[::]:{settings.port}"] if settings.deployed else [f"127.0.0.1:{settings.port}"]
    app = behind_router(composition.create_app(settings, banner=banner), settings)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await hypercorn_serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]

    try:
        uvloop.run(run())  # the same event loop as the Procfile's hypercorn (worker_class = "uvloop")
    except LifespanFailureError:
        if not composition.start_failure_logged:
            raise
        return 1  # the app has said why in one line; hypercorn's error only repeats it with two tracebacks
    return 0


if __name__ == "__main__":
    sys.exit(main())
