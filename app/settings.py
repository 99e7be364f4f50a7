"""Reads the environment once, at start, and turns it into a typed, validated `Settings`.

Every missing or invalid variable is collected and reported together (SettingsError), so an operator fixes their
configuration in one round instead of one variable per failed deploy.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from environs import Env, EnvValidationError
from marshmallow.validate import Range

from app.errors import SettingsError
from app.whatsapp.backend import WHATSAPP_QR_SECONDS

# Platforms that run the app "deployed": no embedded database, no generated secrets.
DEPLOYMENT_MARKERS = ("DYNO", "RENDER", "RAILWAY_ENVIRONMENT", "FLY_APP_NAME", "DOKKU_APP_NAME")
REQUIRED_WHEN_DEPLOYED = ("DATABASE_URL", "ADMIN_PASSWORD", "API_TOKEN", "SECRET_KEY")
BACKENDS = ("neonize", "replay", "simulator")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
TRUE, FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


@dataclasses.dataclass(frozen=True)
class Settings:
    database_url: str | None  # resolved for both asyncpg and lib/pq; None = start the embedded local server
    port: int
    admin_password: str | None
    api_token: str | None
    secret_key: str | None
    webhook_urls: tuple[str, ...]
    webhook_secret: str | None
    whatsapp_backend: str
    heartbeat_interval: float
    send_rate_per_minute: int
    send_min_interval: float
    auth_migrate_from: Path | None
    sentry_dsn: str | None
    log_level: str
    database_pool_max: int
    simulator_qr_seconds: tuple[float, ...]  # the simulator's QR rhythm (tests shorten it)
    replay_file: Path | None  # WHATSAPP_BACKEND=replay: the file of neonize events the worker is fed from
    worker_max_rss_mb: int  # the memory watchdog replaces a worker that grows past this
    deployed: bool
    release: str | None
    data_dir: Path  # local state (embedded Postgres, generated secrets); git-ignored
    message_retention_days: int = 30  # incoming messages/events and receipts older than this are deleted
    webhook_status_posts: bool = False  # contacts' status posts become `status.posted` events (opt-in)
    alert_webhook_url: str | None = None  # where alerts go (a Slack/Discord/Mattermost incoming webhook)
    alert_after_seconds: int = 300  # reconnecting longer than this is alerted

    def secrets(self) -> list[str]:
        """Values that must never appear in logs, pages or webhook bodies."""
        values = [self.admin_password, self.api_token, self.secret_key, self.webhook_secret, self.sentry_dsn]
        values.append(self.alert_webhook_url)  # Slack's and Discord's incoming-webhook URLs hold their token
        password = urlsplit(self.database_url).password if self.database_url else None
        return [value for value in (*values, password) if value]


def resolve_database_url(raw: str) -> str:
    """Return a postgresql:// URL that asyncpg and whatsmeow's lib/pq both read the same way.

    lib/pq defaults to sslmode=require, and neonize silently treats a store name that does not start with "postgres"
    as a SQLite file name (both seen with neonize 0.5.2), so only postgres URLs are accepted and sslmode is always
    written out: an explicit sslmode wins, otherwise TLS is required unless the server is on loopback or a Unix socket.
    Raises ValueError with a message meant for the operator.
    """
    raw = raw.strip()
    parts = urlsplit(raw)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError("must be a postgres:// or postgresql:// URL, for example postgresql://user:pass@host:5432/db")
    if "%" in (parts.netloc.rpartition("@")[2]):
        raise ValueError("a percent-encoded host is not supported; give a Unix socket as ?host=/path/to/dir")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ValueError("has an invalid port") from None
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    sslmode = query.get("sslmode")
    if sslmode is not None and sslmode not in SSL_MODES:
        raise ValueError(f"has sslmode={sslmode!r}; expected one of {', '.join(SSL_MODES)}")
    socket_dir = query.get("host", "")
    if not parts.hostname and not socket_dir:
        raise ValueError("names no host; give one (postgresql://host/db) or a Unix socket (?host=/path/to/dir)")
    if sslmode is None:
        local = socket_dir.startswith("/") or _is_loopback(parts.hostname or socket_dir)
        query["sslmode"] = "disable" if local else "require"
    return urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(query, safe="/"), ""))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_settings() -> Settings:
    """Read and validate the whole environment; raise SettingsError naming every bad variable at once."""
    environ = os.environ
    env = Env(eager=False)
    problems: dict[str, str] = {}
    deployed = any(environ.get(marker) for marker in DEPLOYMENT_MARKERS)

    def text(name: str) -> str | None:
        value = environ.get(name, "").strip()
        return value or None

    port = env.int("PORT", 8000, validate=_between(1, 65535))
    heartbeat_interval = env.float("HEARTBEAT_INTERVAL", 30.0, validate=_between(1, 3600))
    send_rate_per_minute = env.int("SEND_RATE_PER_MINUTE", 20, validate=_between(1, 600))
    send_min_interval = env.float("SEND_MIN_INTERVAL", 2.0, validate=_between(0, 3600))
    database_pool_max = env.int("DATABASE_POOL_MAX", 5, validate=_between(2, 100))
    # A neonize worker holds ~60-70 MB (docs/BENCHMARKS.md); past 300 MB it is leaking, and a Basic dyno's 512 MB
    # must hold the web process too.
    worker_max_rss_mb = env.int("WORKER_MAX_RSS_MB", 300, validate=_between(100, 65536))
    message_retention_days = env.int("MESSAGE_RETENTION_DAYS", 30, validate=_between(1, 3650))
    alert_after_seconds = env.int("ALERT_AFTER_SECONDS", 300, validate=_between(10, 86400))
    try:
        env.seal()
    except EnvValidationError as error:
        for name, messages in error.error_messages.items():  # type: ignore[union-attr]
            problems[str(name)] = "; ".join(str(message) for message in messages)

    database_url = text("DATABASE_URL")
    if database_url is not None:
        try:
            database_url = resolve_database_url(database_url)
        except ValueError as error:
            problems["DATABASE_URL"] = str(error)

    backend = (text("WHATSAPP_BACKEND") or "neonize").lower()
    if backend not in BACKENDS:
        problems["WHATSAPP_BACKEND"] = f"must be one of {', '.join(BACKENDS)}, not {backend!r}"

    log_level = (text("LOG_LEVEL") or "INFO").upper()
    if log_level not in LOG_LEVELS:
        problems["LOG_LEVEL"] = f"must be one of {', '.join(LOG_LEVELS)}"

    webhook_urls = tuple(url.strip() for url in (text("WEBHOOK_URL") or "").split(",") if url.strip())
    if any(urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc for url in webhook_urls):
        problems["WEBHOOK_URL"] = "each entry must be an http:// or https:// URL (comma-separated for several)"
    webhook_secret = text("WEBHOOK_SECRET")
    if webhook_urls and not webhook_secret:
        problems["WEBHOOK_SECRET"] = "is required when WEBHOOK_URL is set (it signs every delivery)"

    if deployed:
        for name in REQUIRED_WHEN_DEPLOYED:
            if not text(name):
                problems.setdefault(name, "is required when deployed")

    simulator_qr_seconds = WHATSAPP_QR_SECONDS
    if raw_qr_seconds := text("SIMULATOR_QR_SECONDS"):
        try:
            simulator_qr_seconds = tuple(float(part) for part in raw_qr_seconds.split(","))
        except ValueError:
            simulator_qr_seconds = ()
        if not simulator_qr_seconds or not all(0.1 <= seconds <= 3600 for seconds in simulator_qr_seconds):
            problems["SIMULATOR_QR_SECONDS"] = "must be comma-separated seconds, each from 0.1 to 3600 (60,20,20)"

    replay_file = Path(raw_replay) if (raw_replay := text("WHATSAPP_REPLAY_FILE")) else None
    if backend == "replay":
        replay_problem = _replay_file_problem(replay_file)
        if replay_problem:
            problems["WHATSAPP_REPLAY_FILE"] = replay_problem

    status_posts = (text("WEBHOOK_STATUS_POSTS") or "false").lower()
    if status_posts not in (*TRUE, *FALSE):
        problems["WEBHOOK_STATUS_POSTS"] = "must be true or false"
    webhook_status_posts = status_posts in TRUE

    alert_webhook_url = text("ALERT_WEBHOOK_URL")
    alert_parts = urlsplit(alert_webhook_url or "")
    if alert_webhook_url and (alert_parts.scheme not in ("http", "https") or not alert_parts.netloc):
        problems["ALERT_WEBHOOK_URL"] = "must be an http:// or https:// URL (a Slack, Discord or Mattermost webhook)"

    auth_migrate_from = text("AUTH_MIGRATE_FROM")
    if problems:
        raise SettingsError(problems)
    return Settings(
        database_url=database_url,
        port=port,
        admin_password=text("ADMIN_PASSWORD"),
        api_token=text("API_TOKEN"),
        secret_key=text("SECRET_KEY"),
        webhook_urls=webhook_urls,
        webhook_secret=webhook_secret,
        whatsapp_backend=backend,
        heartbeat_interval=heartbeat_interval,
        send_rate_per_minute=send_rate_per_minute,
        send_min_interval=send_min_interval,
        auth_migrate_from=Path(auth_migrate_from) if auth_migrate_from else None,
        sentry_dsn=text("SENTRY_DSN"),
        log_level=log_level,
        database_pool_max=database_pool_max,
        simulator_qr_seconds=simulator_qr_seconds,
        replay_file=replay_file,
        worker_max_rss_mb=worker_max_rss_mb,
        deployed=deployed,
        release=text("HEROKU_BUILD_COMMIT") or text("SOURCE_VERSION"),
        data_dir=Path(text("DATA_DIR") or ".data"),
        message_retention_days=message_retention_days,
        webhook_status_posts=webhook_status_posts,
        alert_webhook_url=alert_webhook_url,
        alert_after_seconds=alert_after_seconds,
    )


def _replay_file_problem(path: Path | None) -> str | None:
    """Why WHATSAPP_REPLAY_FILE cannot be replayed, checked at start (the worker would fail on it later)."""
    if path is None:
        return "is required with WHATSAPP_BACKEND=replay (a JSON-lines file of neonize events)"
    from app.whatsapp.replay import read_replay_file  # reads JSON only; neonize is imported by the worker alone

    try:
        read_replay_file(path)
    except OSError as error:
        return f"cannot be read: {error.strerror or error}"
    except ValueError as error:
        return str(error)
    return None


def _between(low: float, high: float) -> Range:
    return Range(min=low, max=high, error=f"must be between {low:g} and {high:g}")
