"""The long-lived parts of the web process (database, message store, retention, webhook dispatcher, session, sender,
alerts), started and stopped in order by the app's lifespan (app/main.py), and the status they report together."""

from __future__ import annotations

import asyncio
import gc
import logging
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.alerts.watch import Alerts
from app.authimport.startup import import_at_start
from app.contacts.checks import NumberChecker
from app.db.database import Database
from app.db.migrations import migrate
from app.errors import DatabaseUnavailable
from app.incoming.autoread import AutoReader
from app.incoming.media_retry import MediaRetrier
from app.incoming.retention import Retention
from app.incoming.store import IncomingOptions, MessageStore
from app.media.links import MediaLinks
from app.media.storage import POSTGRES, MediaStorage, storage_for
from app.observability import flush_sentry, name_process
from app.sending import queue
from app.sending.sender import Sender
from app.session.states import State
from app.session.supervisor import Supervisor
from app.settings import Settings, child_environment
from app.status import WEBHOOKS_OFF, MediaSettings, Status, session_status, status_without_database
from app.webhooks.outbox import sync_endpoints
from app.whatsapp import protocol
from app.whatsapp.protocol import WorkerSettings

if TYPE_CHECKING:
    from app.webhooks.dispatcher import Dispatcher

log = logging.getLogger(__name__)

# After hypercorn's 8 s of draining (app/hypercorn_config.py), our own shutdown: 8 + 9 + 0.5 + 2 = 19.5 s < 20 s.
SUPERVISOR_BUDGET = 9.0  # the worker gets 5 s to stop before SIGKILL, then the lease is released
STORE_BUDGET = 0.5  # then the messages the worker sent last are stored
DISPATCHER_BUDGET = 8.0  # meanwhile, in parallel: webhook requests in flight finish, outcomes are stored
POOL_CLOSE_BUDGET = 2.0
DOWNLOAD_TIMEOUT = 120.0  # seconds the worker may take to download a file again (a large one from a slow CDN)


def worker_settings(settings: Settings, media_dir: str | None = None) -> WorkerSettings:
    """What a worker process is told of the settings (its first frame); it reads nothing from the environment."""
    assert settings.database_url, "the database URL is resolved before the app is created"
    return WorkerSettings(
        backend=settings.whatsapp_backend,
        database_url=settings.database_url,
        log_level=settings.log_level,
        sentry_dsn=settings.sentry_dsn,
        release=settings.release,
        deployed=settings.deployed,
        secrets=tuple(settings.secrets()),
        simulator_qr_seconds=settings.simulator_qr_seconds,
        replay_file=str(settings.replay_file.resolve()) if settings.replay_file else None,
        replay_calls=str(settings.replay_calls.resolve()) if settings.replay_calls else None,
        reject_calls=settings.reject_calls,
        media_dir=media_dir,
        media_max_bytes=settings.media_max_bytes,
    )


class Services:
    """The long-lived parts of the web process, started and stopped in order by the app's lifespan."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.database: Database | None = None
        self.supervisor: Supervisor | None = None
        self.sender: Sender | None = None
        self.auth_import: dict[str, Any] | None = None  # what the import of a file-based login did at this start
        self.store: MessageStore | None = None
        self.media_dir: str | None = None
        self.media_links: MediaLinks | None = None
        self.media_storage: MediaStorage = POSTGRES
        self.dispatcher: Dispatcher | None = None
        self.retention: Retention | None = None
        self.media_retrier: MediaRetrier | None = None
        self.alerts: Alerts | None = None
        self.auto_reader: AutoReader | None = None
        self.number_checker: NumberChecker | None = None

    async def _mark_read(self, chat: str, sender: str, message_ids: list[str]) -> None:
        assert self.supervisor is not None
        await self.supervisor.command(protocol.MARK_READ, {"chat": chat, "sender": sender, "message_ids": message_ids})

    async def _download_media(self, args: dict[str, Any]) -> dict[str, Any]:
        assert self.supervisor is not None
        return await self.supervisor.command(protocol.DOWNLOAD_MEDIA, args, timeout=DOWNLOAD_TIMEOUT)

    async def _check_numbers(self, phones: list[str]) -> dict[str, Any]:
        assert self.supervisor is not None
        return await self.supervisor.command(protocol.CHECK_NUMBERS, {"phones": phones})

    def session_state(self) -> str:
        return self.supervisor.state.value if self.supervisor else State.STARTING.value

    async def status(self) -> Status:
        """What /api/status, the page and /metrics show; every figure comes from here."""
        assert self.database is not None and self.supervisor is not None
        dispatcher = self.dispatcher
        return await session_status(
            self.supervisor,
            self.database,
            self.auth_import,
            store=self.store,
            dispatcher=dispatcher.state if dispatcher else WEBHOOKS_OFF,
            dispatcher_error=dispatcher.last_error if dispatcher else None,
            media=MediaSettings.of(self.settings),
        )

    async def status_now(self) -> tuple[Status, bool]:
        """The status for a view that must answer even while Postgres is unavailable (the page, /metrics): then the
        session as the supervisor knows it, every stored figure unknown, and False."""
        assert self.supervisor is not None
        try:
            return await self.status(), True
        except DatabaseUnavailable:
            return status_without_database(self.supervisor), False

    async def start(self) -> None:
        settings = self.settings
        assert settings.database_url, "the database URL is resolved before the app is created"
        name_process(settings.dyno)
        self.database = await Database.open(settings.database_url, max_size=settings.database_pool_max)
        async with self.database.connection() as connection:
            await migrate(connection)
        # Before the worker connects: a file-based login found here is copied into Postgres (never raises; a refusal
        # or failure is logged and shown in /api/status, and the session then starts as usual, pairing if need be).
        self.auth_import = await import_at_start(
            settings.database_url, settings.auth_migrate_from, Path.cwd(), settings.whatsapp_backend
        )
        async with self.database.transaction() as connection:
            await sync_endpoints(connection, settings.webhook_urls)
        # Where workers hand downloaded media over (app/whatsapp/media.py): private to this process (mkdtemp: 0700).
        self.media_dir = tempfile.mkdtemp(prefix="whatsapp-media-")
        if settings.secret_key:  # signs the links to stored media in webhook events and checks them at GET /media
            self.media_links = MediaLinks(settings.secret_key, settings.media_url_ttl, settings.public_url)
        # MEDIA_STORAGE_URL: the bucket is not asked anything at start (an outage there must not stop the app); a
        # file that cannot be put is downloaded again later (app/incoming/media_retry.py)
        self.media_storage = storage_for(settings.media_bucket)
        options = IncomingOptions(
            status_posts=settings.webhook_status_posts, media_dir=self.media_dir, links=self.media_links,
            storage=self.media_storage,
        )  # fmt: skip
        reply = queue.declined_call_reply(settings.reject_calls_message) if settings.reject_calls_message else None
        self.store = MessageStore(self.database, receipt_hook=queue.receipt_hook, options=options, call_hook=reply)
        self.store.start()
        self.retention = Retention(
            self.database,
            settings.message_retention_days,
            media_days=settings.media_retention_days,
            media_max_total=settings.media_max_total_bytes,
            storage=self.media_storage,
        )
        self.retention.start()
        if settings.webhook_urls:
            assert settings.webhook_secret, "settings require WEBHOOK_SECRET with WEBHOOK_URL"
            from app.webhooks.dispatcher import Dispatcher  # aiohttp is imported only when there is a URL to POST to

            if settings.auto_read:
                self.auto_reader = AutoReader(self._mark_read)
                self.auto_reader.start()
            self.dispatcher = Dispatcher(
                self.database,
                settings.database_url,
                settings.webhook_secret,
                on_delivered=self.auto_reader.delivered if self.auto_reader else None,
            )
            self.dispatcher.start()
        self.supervisor = Supervisor(
            database=self.database,
            worker=worker_settings(settings, self.media_dir),
            heartbeat_interval=settings.heartbeat_interval,
            worker_max_rss_mb=settings.worker_max_rss_mb,
            incoming=self.store.take,
            worker_env=child_environment(),  # without the app's secrets: the worker gets its settings from us
        )
        self.sender = Sender(
            self.database,
            self.supervisor,
            per_minute=settings.send_rate_per_minute,
            min_interval=settings.send_min_interval,
            typing_cap=settings.send_typing_seconds,
            media_dir=self.media_dir,
            media_storage=self.media_storage,
        )
        self.number_checker = NumberChecker(self.database, self._check_numbers, settings.check_cache_days)
        self.supervisor.start()  # in the background: HTTP answers (state "starting"/"standby") meanwhile
        self.alerts = Alerts.for_session(self.database, settings, self.supervisor)
        self.alerts.start()  # only the lease holder's alerts look and send
        self.sender.start()  # sends only while the session is connected
        self.media_retrier = MediaRetrier(self.database, self._download_media, options)
        self.media_retrier.start()  # tries only while the session is connected
        # Everything loaded so far lives as long as the process: keep the garbage collector from rescanning it on
        # every collection (shorter pauses, so a steadier tail latency under load).
        gc.collect()
        gc.freeze()
        log.info("started")

    async def _stop_session(self) -> None:
        if self.supervisor is not None:
            await self.supervisor.stop(SUPERVISOR_BUDGET)
        if self.store is not None:
            await self.store.close(STORE_BUDGET)

    async def _stop_dispatcher(self) -> None:
        if self.dispatcher is not None:
            await self.dispatcher.stop(DISPATCHER_BUDGET)
        if self.auto_reader is not None:
            await self.auto_reader.stop()

    async def stop(self) -> None:
        log.info("shutting down")
        try:
            # The sender first (it lets a send in flight finish), then the session and the dispatcher side by side.
            if self.sender is not None:
                await self.sender.stop()
            if self.retention is not None:
                await self.retention.stop()
            if self.media_retrier is not None:
                await self.media_retrier.stop()
            if self.alerts is not None:
                await self.alerts.stop()
            await asyncio.gather(self._stop_session(), self._stop_dispatcher())
            if self.database is not None:
                await self.database.close(POOL_CLOSE_BUDGET)
            if self.media_dir is not None:  # what a killed worker wrote and nobody stored
                shutil.rmtree(self.media_dir, ignore_errors=True)
        finally:
            flush_sentry()
            log.info("shutdown complete")
