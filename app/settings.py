"""Reads the environment once, at start, and turns it into a typed, validated `Settings`: every variable through
environs, here and nowhere else (the worker process is handed its part by the web process).

Every missing or invalid variable is collected and reported together (SettingsError), so an operator fixes their
configuration in one round instead of one variable per failed deploy.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from environs import Env, EnvError, EnvValidationError
from marshmallow.validate import Length, Range

from app.errors import SettingsError
from app.whatsapp.backend import WHATSAPP_QR_SECONDS

# Platforms that run the app "deployed": no embedded database, no generated secrets.
DEPLOYMENT_MARKERS = ("DYNO", "RENDER", "RAILWAY_ENVIRONMENT", "FLY_APP_NAME", "DOKKU_APP_NAME")
REQUIRED_WHEN_DEPLOYED = ("DATABASE_URL", "ADMIN_PASSWORD", "API_TOKEN", "SECRET_KEY")
BACKENDS = ("neonize", "replay", "simulator")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
TRUE, FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
# Variables that hold this app's secrets (the database password included). A child process (the WhatsApp worker)
# receives what it needs from the parent, so it runs without them: Go code that crashes or dumps its environment
# has nothing to give away.
SECRET_VARIABLES = (
    "DATABASE_URL", "ADMIN_PASSWORD", "API_TOKEN", "SECRET_KEY", "WEBHOOK_SECRET", "SENTRY_DSN", "METRICS_TOKEN",
    "ALERT_WEBHOOK_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",  # the worker needs no S3
)  # fmt: skip
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# S3's bucket naming rules (R2, Backblaze B2 and MinIO accept the same names); a prefix is path segments.
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
PREFIX_SEGMENT = re.compile(r"^[A-Za-z0-9!_.*'()-]+$")


@dataclasses.dataclass(frozen=True)
class MediaBucket:
    """MEDIA_STORAGE_URL (s3://bucket/prefix) with the usual AWS variables: where media bytes go instead of Postgres."""

    bucket: str
    prefix: str  # "" or "a/b": object keys are "<prefix>/<media id>"
    region: str | None = None  # AWS_REGION or AWS_DEFAULT_REGION ("auto" for Cloudflare R2)
    endpoint_url: str | None = None  # AWS_ENDPOINT_URL: R2, Backblaze, MinIO (None: AWS itself)
    access_key_id: str | None = None
    secret_access_key: str | None = dataclasses.field(default=None, repr=False)
    session_token: str | None = dataclasses.field(default=None, repr=False)

    @property
    def url(self) -> str:
        """As MEDIA_STORAGE_URL names it: s3://bucket or s3://bucket/prefix."""
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")


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
    metrics_token: str | None = None  # a bearer token for GET /metrics alone (the API token works too)
    dyno: str | None = None  # DYNO: this process's name on Heroku (the audit trail and lease holder use it)
    replay_calls: Path | None = None  # WHATSAPP_REPLAY_CALLS: where the replay client records its calls (tests)
    xdg_runtime_dir: Path | None = None  # the embedded Postgres keeps its lock there (a private one if unset)
    alert_webhook_url: str | None = None  # where alerts go (a Slack/Discord/Mattermost incoming webhook)
    alert_after_seconds: int = 300  # reconnecting longer than this is alerted
    auto_read: bool = False  # AUTO_READ: incoming messages are marked read once a webhook endpoint took them
    send_typing_seconds: float = 0.0  # the most "typing..." before a message; 0: only for messages that ask
    check_cache_days: int = 7  # CHECK_CACHE_DAYS: how long an answer of POST /api/contacts/check is reused
    reject_calls: bool = False  # REJECT_CALLS: decline incoming calls
    reject_calls_message: str | None = None  # REJECT_CALLS_MESSAGE: then queue this text to the caller
    media_max_bytes: int = 16 * 1024 * 1024  # MEDIA_MAX_BYTES: a larger incoming file is not downloaded
    media_retention_days: int = 30  # MEDIA_RETENTION_DAYS: stored media older than this is deleted
    media_max_total_bytes: int = 1024**3  # MEDIA_MAX_TOTAL_BYTES: over this, the oldest stored files are removed first
    media_url_ttl: int = 7 * 86400  # MEDIA_URL_TTL: seconds a webhook's signed media link stays valid
    public_url: str | None = None  # PUBLIC_URL: this app's address, so webhook media links are absolute
    media_fetch_allow_private: bool = False  # MEDIA_FETCH_ALLOW_PRIVATE: a send's `url` may name a private address
    media_bucket: MediaBucket | None = None  # MEDIA_STORAGE_URL: None keeps media bytes in Postgres

    def secrets(self) -> list[str]:
        """Values that must never appear in logs, pages or webhook bodies."""
        values = [
            self.admin_password, self.api_token, self.secret_key, self.webhook_secret, self.sentry_dsn,
            self.metrics_token, self.alert_webhook_url,  # Slack's and Discord's webhook URLs hold their token
        ]  # fmt: skip
        password = urlsplit(self.database_url).password if self.database_url else None
        bucket = self.media_bucket
        keys = (bucket.secret_access_key, bucket.session_token) if bucket else ()
        return [value for value in (*values, password, *keys) if value]


def child_environment() -> dict[str, str]:
    """This process's environment without the app's secrets, for a child process to start with."""
    return {name: value for name, value in os.environ.items() if name not in SECRET_VARIABLES}


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


def _text(value: str | None) -> str | None:
    """A variable that is unset or blank is not set."""
    return (value or "").strip() or None


def _path(value: str | None) -> Path | None:
    text = _text(value)
    return Path(text) if text else None


def _database_url(value: str | None) -> str | None:
    text = _text(value)
    if text is None:
        return None
    try:
        return resolve_database_url(text)
    except ValueError as error:
        raise EnvError(str(error)) from None


def _choice(value: str | None, *, fallback: str, choices: tuple[str, ...], upper: bool = False) -> str:
    text = _text(value) or fallback  # blank counts as unset
    text = text.upper() if upper else text.lower()
    if text not in choices:
        shown = "" if upper else f", not {text!r}"  # a log level is its own explanation
        raise EnvError(f"must be one of {', '.join(choices)}{shown}")
    return text


def _flag(value: str | None) -> bool:
    text = (_text(value) or "false").lower()
    if text not in (*TRUE, *FALSE):
        raise EnvError("must be true or false")
    return text in TRUE


def _webhook_urls(value: str | None) -> tuple[str, ...]:
    urls = tuple(url.strip() for url in (_text(value) or "").split(",") if url.strip())
    if any(urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc for url in urls):
        raise EnvError("each entry must be an http:// or https:// URL (comma-separated for several)")
    return urls


def _alert_url(value: str | None) -> str | None:
    url = _text(value)
    if url is not None and (urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc):
        raise EnvError("must be an http:// or https:// URL (a Slack, Discord or Mattermost webhook)")
    return url


def _public_url(value: str | None) -> str | None:
    url = _text(value)
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise EnvError("must be this app's http:// or https:// address, without query (https://gateway.example.com)")
    return url.rstrip("/")


def _media_storage_url(value: str | None) -> tuple[str, str] | None:
    """s3://bucket or s3://bucket/prefix -> (bucket, prefix); unset or blank: None (media stays in Postgres)."""
    url = _text(value)
    if url is None:
        return None
    wrong = "must be s3://bucket or s3://bucket/prefix (unset: media is kept in Postgres)"
    parts = urlsplit(url)
    if parts.scheme != "s3" or parts.query or parts.fragment or "@" in parts.netloc or ":" in parts.netloc:
        raise EnvError(wrong)
    if not BUCKET_NAME.match(parts.netloc) or ".." in parts.netloc:
        raise EnvError(f"{wrong}; {parts.netloc!r} is not a bucket name (3-63 of a-z, 0-9, '.', '-')")
    segments = parts.path.strip("/").split("/") if parts.path.strip("/") else []
    if any(not PREFIX_SEGMENT.match(segment) or segment in (".", "..") for segment in segments):
        raise EnvError(f"{wrong}; the prefix {parts.path!r} is not path segments of letters, digits and !_.*'()-")
    return parts.netloc, "/".join(segments)


def _endpoint_url(value: str | None) -> str | None:
    url = _text(value)
    if url is not None and (urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc):
        raise EnvError("must be an http:// or https:// URL (the S3 endpoint of R2, Backblaze, MinIO ...)")
    return url.rstrip("/") if url else None


def _qr_seconds(value: str | None) -> tuple[float, ...]:
    text = _text(value)
    if text is None:
        return WHATSAPP_QR_SECONDS
    try:
        seconds = tuple(float(part) for part in text.split(","))
    except ValueError:
        seconds = ()
    if not seconds or not all(0.1 <= second <= 3600 for second in seconds):
        raise EnvError("must be comma-separated seconds, each from 0.1 to 3600 (60,20,20)")
    return seconds


def _calls_file(value: str | None) -> Path | None:
    path = _path(value)
    if path is not None and not path.resolve().parent.is_dir():
        raise EnvError(f"must name a file in an existing folder; {str(path.parent)!r} is not one")
    return path


def _runtime_dir(value: str | None) -> Path | None:
    path = _path(value)
    if path is not None and not path.is_absolute():
        raise EnvError("must be an absolute path (the XDG base directory specification says relative ones are invalid)")
    return path


def _env() -> Env:
    env = Env(eager=False)
    for name, parser in (
        ("text", _text),
        ("optional_path", _path),
        ("database_url", _database_url),
        ("choice", _choice),
        ("flag", _flag),
        ("webhook_urls", _webhook_urls),
        ("alert_url", _alert_url),
        ("qr_seconds", _qr_seconds),
        ("public_url", _public_url),
        ("media_storage_url", _media_storage_url),
        ("endpoint_url", _endpoint_url),
        ("calls_file", _calls_file),
        ("runtime_dir", _runtime_dir),
    ):
        env.add_parser(name, parser)
    return env


def load_settings() -> Settings:
    """Read and validate the whole environment; raise SettingsError naming every bad variable at once."""
    env: Any = _env()  # the parsers added above are attributes environs makes at run time
    problems: dict[str, str] = {}
    deployed = any(env.text(marker, None) for marker in DEPLOYMENT_MARKERS)
    dyno = env.text("DYNO", None)
    port = env.int("PORT", 8000, validate=_between(1, 65535))
    heartbeat_interval = env.float("HEARTBEAT_INTERVAL", 30.0, validate=_between(1, 3600))
    send_rate_per_minute = env.int("SEND_RATE_PER_MINUTE", 20, validate=_between(1, 600))
    send_min_interval = env.float("SEND_MIN_INTERVAL", 2.0, validate=_between(0, 3600))
    send_typing_seconds = env.float("SEND_TYPING_SECONDS", 0.0, validate=_between(0, 20))
    database_pool_max = env.int("DATABASE_POOL_MAX", 5, validate=_between(2, 100))
    # A neonize worker holds ~60-70 MB (docs/BENCHMARKS.md); past 300 MB it is leaking, and a Basic dyno's 512 MB
    # must hold the web process too.
    worker_max_rss_mb = env.int("WORKER_MAX_RSS_MB", 300, validate=_between(100, 65536))
    message_retention_days = env.int("MESSAGE_RETENTION_DAYS", 30, validate=_between(1, 3650))
    check_cache_days = env.int("CHECK_CACHE_DAYS", 7, validate=_between(1, 365))
    # WhatsApp itself caps documents at 2 GB; a file is held whole in memory once (the store's bytea parameter).
    media_max_bytes = env.int("MEDIA_MAX_BYTES", 16 * 1024 * 1024, validate=_between(1, 512 * 1024 * 1024))
    media_retention_days = env.int("MEDIA_RETENTION_DAYS", 30, validate=_between(1, 3650))
    media_max_total_bytes = env.int("MEDIA_MAX_TOTAL_BYTES", 1024**3, validate=_between(1024 * 1024, 2**50))
    media_url_ttl = env.int("MEDIA_URL_TTL", 7 * 86400, validate=_between(60, 365 * 86400))
    public_url = env.public_url("PUBLIC_URL", None)
    # A send's `url` is fetched by this server: without this, a token holder could make it read internal services
    # (the cloud's metadata address, a database's HTTP port). On for a gateway whose files sit on a private network.
    media_fetch_allow_private = env.flag("MEDIA_FETCH_ALLOW_PRIVATE", None)
    media_storage = env.media_storage_url("MEDIA_STORAGE_URL", None)
    aws = {name: env.text(name, None) for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")}
    aws_region = env.text("AWS_REGION", None) or env.text("AWS_DEFAULT_REGION", None)
    aws_endpoint_url = env.endpoint_url("AWS_ENDPOINT_URL", None)
    metrics_token = env.str("METRICS_TOKEN", None, validate=Length(min=16, error="must be at least 16 characters"))
    database_url = env.database_url("DATABASE_URL", None)
    backend = env.choice("WHATSAPP_BACKEND", None, fallback="neonize", choices=BACKENDS)
    log_level = env.choice("LOG_LEVEL", None, fallback="INFO", choices=LOG_LEVELS, upper=True)
    webhook_urls = env.webhook_urls("WEBHOOK_URL", None)
    webhook_secret = env.text("WEBHOOK_SECRET", None)
    simulator_qr_seconds = env.qr_seconds("SIMULATOR_QR_SECONDS", None)
    replay_file = env.optional_path("WHATSAPP_REPLAY_FILE", None)
    replay_calls = env.calls_file("WHATSAPP_REPLAY_CALLS", None)
    webhook_status_posts = env.flag("WEBHOOK_STATUS_POSTS", None)
    auto_read = env.flag("AUTO_READ", None)
    reject_calls = env.flag("REJECT_CALLS", None)
    reject_calls_message = env.str(
        "REJECT_CALLS_MESSAGE", None, validate=Length(max=4096, error="must be at most 4096 characters")
    )
    reject_calls_message = (reject_calls_message or "").strip() or None
    secrets = {name: env.text(name, None) for name in ("ADMIN_PASSWORD", "API_TOKEN", "SECRET_KEY")}
    sentry_dsn = env.text("SENTRY_DSN", None)
    auth_migrate_from = env.optional_path("AUTH_MIGRATE_FROM", None)
    release = env.text("HEROKU_BUILD_COMMIT", None) or env.text("SOURCE_VERSION", None)
    data_dir = env.optional_path("DATA_DIR", None) or Path(".data")
    xdg_runtime_dir = env.runtime_dir("XDG_RUNTIME_DIR", None)
    alert_webhook_url = env.alert_url("ALERT_WEBHOOK_URL", None)
    alert_after_seconds = env.int("ALERT_AFTER_SECONDS", 300, validate=_between(10, 86400))
    try:
        env.seal()
    except EnvValidationError as error:
        for name, messages in error.error_messages.items():  # type: ignore[union-attr]
            problems[str(name)] = "; ".join(str(message) for message in messages)

    # What depends on more than one variable.
    if (webhook_urls or "WEBHOOK_URL" in problems) and not webhook_secret:
        problems["WEBHOOK_SECRET"] = "is required when WEBHOOK_URL is set (it signs every delivery)"
    if auto_read and not webhook_urls and "WEBHOOK_URL" not in problems:
        problems["AUTO_READ"] = "needs WEBHOOK_URL: a message is marked read once a webhook endpoint took it"
    if reject_calls_message and not reject_calls and "REJECT_CALLS" not in problems:
        problems["REJECT_CALLS_MESSAGE"] = "is sent only with REJECT_CALLS=true (to the caller of a declined call)"
    if media_storage is not None:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            if not aws[name] and name not in problems:
                problems[name] = "is required with MEDIA_STORAGE_URL (the bucket's access key)"
    if deployed:
        required = {"DATABASE_URL": database_url, **secrets}
        for name in REQUIRED_WHEN_DEPLOYED:
            if not required[name] and name not in problems:
                problems[name] = "is required when deployed"
    if backend == "replay":
        replay_problem = _replay_file_problem(replay_file)
        if replay_problem:
            problems["WHATSAPP_REPLAY_FILE"] = replay_problem
    if problems:
        raise SettingsError(problems)
    media_bucket = None
    if media_storage is not None:
        media_bucket = MediaBucket(
            bucket=media_storage[0], prefix=media_storage[1], region=aws_region, endpoint_url=aws_endpoint_url,
            access_key_id=aws["AWS_ACCESS_KEY_ID"], secret_access_key=aws["AWS_SECRET_ACCESS_KEY"],
            session_token=aws["AWS_SESSION_TOKEN"],
        )  # fmt: skip
    return Settings(
        database_url=database_url,
        port=port,
        admin_password=secrets["ADMIN_PASSWORD"],
        api_token=secrets["API_TOKEN"],
        secret_key=secrets["SECRET_KEY"],
        webhook_urls=webhook_urls,
        webhook_secret=webhook_secret,
        whatsapp_backend=backend,
        heartbeat_interval=heartbeat_interval,
        send_rate_per_minute=send_rate_per_minute,
        send_min_interval=send_min_interval,
        auth_migrate_from=auth_migrate_from,
        sentry_dsn=sentry_dsn,
        log_level=log_level,
        database_pool_max=database_pool_max,
        simulator_qr_seconds=simulator_qr_seconds,
        replay_file=replay_file,
        worker_max_rss_mb=worker_max_rss_mb,
        deployed=deployed,
        release=release,
        data_dir=data_dir,
        message_retention_days=message_retention_days,
        webhook_status_posts=webhook_status_posts,
        auto_read=auto_read,
        send_typing_seconds=send_typing_seconds,
        check_cache_days=check_cache_days,
        reject_calls=reject_calls,
        reject_calls_message=reject_calls_message,
        media_max_bytes=media_max_bytes,
        media_retention_days=media_retention_days,
        media_max_total_bytes=media_max_total_bytes,
        media_url_ttl=media_url_ttl,
        public_url=public_url,
        media_fetch_allow_private=media_fetch_allow_private,
        media_bucket=media_bucket,
        metrics_token=metrics_token.strip() if metrics_token else None,
        dyno=dyno,
        replay_calls=replay_calls,
        xdg_runtime_dir=xdg_runtime_dir,
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
