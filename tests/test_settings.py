"""Settings: every bad variable named at once, the DATABASE_URL resolution table, and exit status 1 from the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.errors import SettingsError
from app.settings import REQUIRED_WHEN_DEPLOYED, MediaBucket, child_environment, load_settings, resolve_database_url

ROOT = Path(__file__).resolve().parent.parent
VARIABLES = [
    "DATABASE_URL",
    "PORT",
    "ADMIN_PASSWORD",
    "API_TOKEN",
    "SECRET_KEY",
    "WEBHOOK_URL",
    "WEBHOOK_SECRET",
    "WHATSAPP_BACKEND",
    "HEARTBEAT_INTERVAL",
    "SEND_RATE_PER_MINUTE",
    "SEND_MIN_INTERVAL",
    "AUTH_MIGRATE_FROM",
    "SENTRY_DSN",
    "LOG_LEVEL",
    "DATABASE_POOL_MAX",
    "SIMULATOR_QR_SECONDS",
    "MESSAGE_RETENTION_DAYS",
    "WEBHOOK_STATUS_POSTS",
    "ALERT_WEBHOOK_URL",
    "ALERT_AFTER_SECONDS",
    "DYNO",
    "RENDER",
    "RAILWAY_ENVIRONMENT",
    "FLY_APP_NAME",
    "DOKKU_APP_NAME",
    "HEROKU_BUILD_COMMIT",
    "SOURCE_VERSION",
    "METRICS_TOKEN",
    "WHATSAPP_REPLAY_FILE",
    "WHATSAPP_REPLAY_CALLS",
    "WORKER_MAX_RSS_MB",
    "DATA_DIR",
    "XDG_RUNTIME_DIR",
    "AUTO_READ",
    "SEND_TYPING_SECONDS",
    "CHECK_CACHE_DAYS",
    "REJECT_CALLS",
    "REJECT_CALLS_MESSAGE",
    "MEDIA_STORAGE_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("raw", "resolved"),
    [
        ("postgres://u:p@db.example.com:5432/app", "postgresql://u:p@db.example.com:5432/app?sslmode=require"),
        ("postgresql://u:p@db.example.com/app", "postgresql://u:p@db.example.com/app?sslmode=require"),
        ("postgres://u@localhost/app", "postgresql://u@localhost/app?sslmode=disable"),
        ("postgres://u@127.0.0.1:5432/app", "postgresql://u@127.0.0.1:5432/app?sslmode=disable"),
        ("postgres://u@127.8.9.10/app", "postgresql://u@127.8.9.10/app?sslmode=disable"),
        ("postgres://u@[::1]:5432/app", "postgresql://u@[::1]:5432/app?sslmode=disable"),
        (
            "postgresql://u@/app?host=/var/run/postgresql",
            "postgresql://u@/app?host=/var/run/postgresql&sslmode=disable",
        ),
        ("postgres://u@db.example.com/app?sslmode=disable", "postgresql://u@db.example.com/app?sslmode=disable"),
        ("postgres://u@localhost/app?sslmode=verify-full", "postgresql://u@localhost/app?sslmode=verify-full"),
        (
            "postgres://u@db.internal/app?connect_timeout=5",
            "postgresql://u@db.internal/app?connect_timeout=5&sslmode=require",
        ),
        ("  postgres://u@localhost/app  ", "postgresql://u@localhost/app?sslmode=disable"),
    ],
)
def test_database_url_resolution(raw: str, resolved: str) -> None:
    assert resolve_database_url(raw) == resolved


@pytest.mark.parametrize(
    ("raw", "complaint"),
    [
        ("bogus", "postgres:// or postgresql://"),
        ("host=localhost dbname=app", "postgres:// or postgresql://"),  # lib/pq would make this a SQLite file
        ("mysql://u@localhost/app", "postgres:// or postgresql://"),
        ("/tmp/neonize.db", "postgres:// or postgresql://"),
        ("postgres:///app", "names no host"),
        ("postgres://u@%2Fvar%2Frun%2Fpostgresql/app", "percent-encoded host"),
        ("postgres://u@localhost:99999/app", "invalid port"),
        ("postgres://u@localhost/app?sslmode=sometimes", "sslmode='sometimes'"),
    ],
)
def test_database_url_rejections(raw: str, complaint: str) -> None:
    with pytest.raises(ValueError) as caught:
        resolve_database_url(raw)
    assert complaint in str(caught.value)


def test_defaults_for_a_local_run() -> None:
    settings = load_settings()
    assert settings.database_url is None and not settings.deployed
    assert (settings.port, settings.whatsapp_backend, settings.heartbeat_interval) == (8000, "neonize", 30.0)
    assert (settings.send_rate_per_minute, settings.send_min_interval, settings.database_pool_max) == (20, 2.0, 5)
    assert settings.webhook_urls == () and settings.log_level == "INFO"
    assert settings.message_retention_days == 30 and settings.webhook_status_posts is False
    assert settings.auto_read is False and settings.send_typing_seconds == 0.0 and settings.check_cache_days == 7
    assert settings.reject_calls is False and settings.reject_calls_message is None


def test_every_bad_variable_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    bad = {
        "DATABASE_URL": "bogus",
        "PORT": "eighty",
        "WHATSAPP_BACKEND": "baileys",
        "HEARTBEAT_INTERVAL": "0",
        "SEND_RATE_PER_MINUTE": "-1",
        "SEND_MIN_INTERVAL": "soon",
        "LOG_LEVEL": "LOUD",
        "WEBHOOK_URL": "ftp://example.com/hook",
        "DATABASE_POOL_MAX": "1",
        "SIMULATOR_QR_SECONDS": "60,soon",
        "MESSAGE_RETENTION_DAYS": "0",
        "WEBHOOK_STATUS_POSTS": "maybe",
        "AUTO_READ": "sometimes",
        "SEND_TYPING_SECONDS": "21",
        "CHECK_CACHE_DAYS": "0",
        "REJECT_CALLS": "always",
    }
    for name, value in bad.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert set(caught.value.problems) == {*bad, "WEBHOOK_SECRET"}
    for name in (*bad, "WEBHOOK_SECRET"):
        assert f"  {name}: " in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "enabled"), [("true", True), ("YES", True), ("1", True), ("false", False), ("0", False)]
)
def test_webhook_status_posts(monkeypatch: pytest.MonkeyPatch, raw: str, enabled: bool) -> None:
    monkeypatch.setenv("WEBHOOK_STATUS_POSTS", raw)
    assert load_settings().webhook_status_posts is enabled


def test_auto_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTO_READ", "true")
    with pytest.raises(SettingsError) as caught:  # nothing would ever be marked read without a webhook to take it
        load_settings()
    assert set(caught.value.problems) == {"AUTO_READ"} and "WEBHOOK_URL" in caught.value.problems["AUTO_READ"]
    monkeypatch.setenv("WEBHOOK_URL", "https://example.com/hook")
    monkeypatch.setenv("WEBHOOK_SECRET", "s" * 32)
    assert load_settings().auto_read is True
    monkeypatch.setenv("AUTO_READ", "off")
    assert load_settings().auto_read is False


def test_send_typing_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEND_TYPING_SECONDS", "2.5")
    assert load_settings().send_typing_seconds == 2.5
    for bad in ("-1", "a while", "nan"):
        monkeypatch.setenv("SEND_TYPING_SECONDS", bad)
        with pytest.raises(SettingsError) as caught:
            load_settings()
        assert set(caught.value.problems) == {"SEND_TYPING_SECONDS"}


def test_check_cache_days(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHECK_CACHE_DAYS", "30")
    assert load_settings().check_cache_days == 30
    monkeypatch.setenv("CHECK_CACHE_DAYS", "a week")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert set(caught.value.problems) == {"CHECK_CACHE_DAYS"}


def test_reject_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REJECT_CALLS_MESSAGE", "Sorry, no calls here")
    with pytest.raises(SettingsError) as caught:  # a message for calls that are never declined
        load_settings()
    assert set(caught.value.problems) == {"REJECT_CALLS_MESSAGE"} and "REJECT_CALLS" in str(caught.value)
    monkeypatch.setenv("REJECT_CALLS", "true")
    settings = load_settings()
    assert settings.reject_calls is True and settings.reject_calls_message == "Sorry, no calls here"
    monkeypatch.setenv("REJECT_CALLS_MESSAGE", "x" * 4097)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert set(caught.value.problems) == {"REJECT_CALLS_MESSAGE"} and "4096" in str(caught.value)


def test_message_retention_days(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESSAGE_RETENTION_DAYS", "7")
    assert load_settings().message_retention_days == 7
    monkeypatch.setenv("MESSAGE_RETENTION_DAYS", "a month")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert set(caught.value.problems) == {"MESSAGE_RETENTION_DAYS"}


def test_media_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert (settings.media_max_bytes, settings.media_retention_days) == (16 * 1024 * 1024, 30)
    monkeypatch.setenv("MEDIA_MAX_BYTES", "1000")
    monkeypatch.setenv("MEDIA_RETENTION_DAYS", "3")
    assert (load_settings().media_max_bytes, load_settings().media_retention_days) == (1000, 3)
    monkeypatch.setenv("MEDIA_MAX_BYTES", "0")
    monkeypatch.setenv("MEDIA_RETENTION_DAYS", "forever")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert set(caught.value.problems) == {"MEDIA_MAX_BYTES", "MEDIA_RETENTION_DAYS"}


def test_media_max_total_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().media_max_total_bytes == 1024**3
    monkeypatch.setenv("MEDIA_MAX_TOTAL_BYTES", "5000000")
    assert load_settings().media_max_total_bytes == 5_000_000
    for wrong in ("1000", "a lot"):  # under 1 MB, not a number
        monkeypatch.setenv("MEDIA_MAX_TOTAL_BYTES", wrong)
        with pytest.raises(SettingsError) as caught:
            load_settings()
        assert set(caught.value.problems) == {"MEDIA_MAX_TOTAL_BYTES"}


def test_media_links_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert (settings.media_url_ttl, settings.public_url) == (7 * 86400, None)
    monkeypatch.setenv("MEDIA_URL_TTL", "3600")
    monkeypatch.setenv("PUBLIC_URL", "https://gateway.example.com/")
    assert (load_settings().media_url_ttl, load_settings().public_url) == (3600, "https://gateway.example.com")
    monkeypatch.setenv("MEDIA_URL_TTL", "10")
    monkeypatch.setenv("PUBLIC_URL", "gateway.example.com")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert set(caught.value.problems) == {"MEDIA_URL_TTL", "PUBLIC_URL"}
    monkeypatch.setenv("MEDIA_URL_TTL", "60")
    monkeypatch.setenv("PUBLIC_URL", "https://gateway.example.com/?x=1")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert set(caught.value.problems) == {"PUBLIC_URL"}


def test_media_storage_url_names_a_bucket_and_the_aws_variables_reach_it(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().media_bucket is None  # unset: media bytes stay in Postgres
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "the-secret-access-key")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("MEDIA_STORAGE_URL", "s3://wa-media")
    assert load_settings().media_bucket == MediaBucket(
        "wa-media", "", "eu-west-1", None, "AKIAEXAMPLE", "the-secret-access-key"
    )
    monkeypatch.setenv("MEDIA_STORAGE_URL", "s3://wa-media.example/gateway/media/")
    monkeypatch.setenv("AWS_REGION", "auto")  # Cloudflare R2's; AWS_REGION wins over AWS_DEFAULT_REGION
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://0123abc.r2.cloudflarestorage.com/")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "the-session-token")
    settings = load_settings()
    bucket = settings.media_bucket
    assert bucket is not None and (bucket.bucket, bucket.prefix, bucket.region, bucket.endpoint_url) == (
        "wa-media.example", "gateway/media", "auto", "https://0123abc.r2.cloudflarestorage.com",
    )  # fmt: skip
    assert {"the-secret-access-key", "the-session-token"} <= set(settings.secrets())  # masked in logs
    assert "the-secret-access-key" not in repr(settings) and "the-session-token" not in repr(settings)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        assert name not in child_environment()  # the worker needs no S3 access


@pytest.mark.parametrize(
    "raw",
    [
        "https://wa-media.s3.amazonaws.com",
        "wa-media",
        "s3://",
        "s3://Wa_Media",
        "s3://ab",
        "s3://wa-media/../other",
        "s3://key:secret@wa-media",
        "s3://wa-media:9000/x",
        "s3://wa-media/x?versionId=1",
    ],
)
def test_a_bad_media_storage_url_is_refused_naming_itself(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "the-secret-access-key")
    monkeypatch.setenv("MEDIA_STORAGE_URL", raw)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert set(caught.value.problems) == {"MEDIA_STORAGE_URL"}
    assert caught.value.problems["MEDIA_STORAGE_URL"].startswith("must be s3://bucket or s3://bucket/prefix")


def test_a_bucket_needs_its_keys_and_an_http_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIA_STORAGE_URL", "s3://wa-media")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "minio.local:9000")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert set(caught.value.problems) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"}
    assert "MEDIA_STORAGE_URL" in caught.value.problems["AWS_SECRET_ACCESS_KEY"]


def test_a_bad_media_storage_url_stops_the_start_naming_it() -> None:
    result = run_cli({"MEDIA_STORAGE_URL": "ftp://wa-media/x", "AWS_SECRET_ACCESS_KEY": "the-secret-access-key"})
    assert result.returncode == 1
    assert "MEDIA_STORAGE_URL: must be s3://bucket" in result.stderr and "Traceback" not in result.stderr
    assert "the-secret-access-key" not in result.stderr + result.stdout


def test_metrics_token(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().metrics_token is None
    monkeypatch.setenv("METRICS_TOKEN", "scrape-token-0123456789")
    settings = load_settings()
    assert settings.metrics_token == "scrape-token-0123456789" and settings.metrics_token in settings.secrets()
    monkeypatch.setenv("METRICS_TOKEN", "short")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert caught.value.problems == {"METRICS_TOKEN": "must be at least 16 characters"}


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        (None, (60.0, 20.0, 20.0, 20.0, 20.0, 20.0)),
        ("5, 5,5", (5.0, 5.0, 5.0)),
        ("600", (600.0,)),
        ("0.3,0.3", (0.3, 0.3)),
    ],
)
def test_simulator_qr_seconds(monkeypatch: pytest.MonkeyPatch, raw: str | None, seconds: tuple[float, ...]) -> None:
    if raw is not None:
        monkeypatch.setenv("SIMULATOR_QR_SECONDS", raw)
    assert load_settings().simulator_qr_seconds == seconds


@pytest.mark.parametrize("raw", ["0", "nan", "inf", "60,,20", "-5", "7200"])
def test_simulator_qr_seconds_rejections(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("SIMULATOR_QR_SECONDS", raw)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert set(caught.value.problems) == {"SIMULATOR_QR_SECONDS"}


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        (None, "is required with WHATSAPP_BACKEND=replay"),
        ("", "cannot be read"),  # the file is not there
        ('{"event": "17", "data": "AA=="}\n', ":1: 'event' must be an integer code"),
        ('{"me": "1@s.whatsapp.net"}\n{"event": 17, "data": "not base64!"}\n', ":2: 'data' is not base64"),
        ('{"sleep": 1, "qr": "x"}\n', "exactly one of"),
        ("not json\n", ":1: not JSON"),
    ],
)
def test_a_replay_file_that_cannot_be_replayed_is_named_at_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, content: str | None, complaint: str
) -> None:
    monkeypatch.setenv("WHATSAPP_BACKEND", "replay")
    if content is not None:
        path = tmp_path / "events.jsonl"
        if content:
            path.write_text(content)
        monkeypatch.setenv("WHATSAPP_REPLAY_FILE", str(path))
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert set(caught.value.problems) == {"WHATSAPP_REPLAY_FILE"}
    assert complaint in caught.value.problems["WHATSAPP_REPLAY_FILE"]


def test_a_replay_file_is_taken_with_its_header(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"me": "6281234567890:3@s.whatsapp.net"}\n{"sleep": 0.1}\n{"event": 3, "data": ""}\n')
    monkeypatch.setenv("WHATSAPP_BACKEND", "replay")
    monkeypatch.setenv("WHATSAPP_REPLAY_FILE", str(path))
    settings = load_settings()
    assert (settings.whatsapp_backend, settings.replay_file) == ("replay", path)


def test_deployed_requires_database_and_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DYNO", "web.1")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert set(caught.value.problems) == set(REQUIRED_WHEN_DEPLOYED)


def test_deployed_with_everything_set(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {
        "DYNO": "web.1",
        "DATABASE_URL": "postgres://u:hunter2@ec2-1-2-3-4.compute.amazonaws.com:5432/d1",
        "ADMIN_PASSWORD": "admin-pw",
        "API_TOKEN": "api-token",
        "SECRET_KEY": "secret-key",
        "WEBHOOK_URL": "https://a.example.com/hook, https://b.example.com/hook",
        "WEBHOOK_SECRET": "hook-secret",
        "HEROKU_BUILD_COMMIT": "abc123",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.deployed and settings.release == "abc123"
    assert settings.database_url == "postgresql://u:hunter2@ec2-1-2-3-4.compute.amazonaws.com:5432/d1?sslmode=require"
    assert settings.webhook_urls == ("https://a.example.com/hook", "https://b.example.com/hook")
    assert set(settings.secrets()) == {"admin-pw", "api-token", "secret-key", "hook-secret", "hunter2"}


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if key not in VARIABLES}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "app", *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )


def test_bogus_database_url_exits_1_naming_it() -> None:
    result = run_cli({"DATABASE_URL": "bogus"})
    assert result.returncode == 1
    assert "DATABASE_URL" in result.stderr and "Traceback" not in result.stderr + result.stdout


def test_deployed_without_configuration_exits_1_naming_everything() -> None:
    result = run_cli({"DYNO": "web.1", "PORT": "x"}, "migrate")
    assert result.returncode == 1
    for name in (*REQUIRED_WHEN_DEPLOYED, "PORT"):
        assert name in result.stderr
    assert "Traceback" not in result.stderr


def test_help_lists_the_commands() -> None:
    result = run_cli({}, "--help")
    assert result.returncode == 0
    assert "serve" in result.stdout and "migrate" in result.stdout


@pytest.mark.parametrize(("raw", "value"), [(None, 300), ("512", 512)])
def test_worker_max_rss_mb(monkeypatch: pytest.MonkeyPatch, raw: str | None, value: int) -> None:
    if raw is not None:
        monkeypatch.setenv("WORKER_MAX_RSS_MB", raw)
    assert load_settings().worker_max_rss_mb == value


@pytest.mark.parametrize("raw", ["50", "lots", "-1"])
def test_worker_max_rss_mb_rejections(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("WORKER_MAX_RSS_MB", raw)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert set(caught.value.problems) == {"WORKER_MAX_RSS_MB"}


def test_the_process_name_comes_from_dyno(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().dyno is None  # a local run: the host name stands in
    for name in REQUIRED_WHEN_DEPLOYED:
        monkeypatch.setenv(name, "postgres://u@db.example.com/app" if name == "DATABASE_URL" else "set")
    monkeypatch.setenv("DYNO", " web.1 ")
    settings = load_settings()
    assert settings.dyno == "web.1" and settings.deployed


def test_replay_calls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert load_settings().replay_calls is None
    monkeypatch.setenv("WHATSAPP_REPLAY_CALLS", str(tmp_path / "calls.jsonl"))
    assert load_settings().replay_calls == tmp_path / "calls.jsonl"
    monkeypatch.setenv("WHATSAPP_REPLAY_CALLS", str(tmp_path / "missing" / "calls.jsonl"))
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert set(caught.value.problems) == {"WHATSAPP_REPLAY_CALLS"}
    assert "an existing folder" in caught.value.problems["WHATSAPP_REPLAY_CALLS"]


def test_xdg_runtime_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert load_settings().xdg_runtime_dir is None  # the embedded Postgres then makes a private one
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert load_settings().xdg_runtime_dir == tmp_path
    monkeypatch.setenv("XDG_RUNTIME_DIR", "relative/dir")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert set(caught.value.problems) == {"XDG_RUNTIME_DIR"}


def test_alert_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (load_settings().alert_webhook_url, load_settings().alert_after_seconds) == (None, 300)
    url = "https://hooks.slack.com/services/T000/B000/token-part"
    monkeypatch.setenv("ALERT_WEBHOOK_URL", url)
    monkeypatch.setenv("ALERT_AFTER_SECONDS", "120")
    settings = load_settings()
    assert (settings.alert_webhook_url, settings.alert_after_seconds) == (url, 120)
    assert url in settings.secrets()  # the URL is the token: logs redact it


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("ALERT_WEBHOOK_URL", "hooks.slack.com/services/T/B/x"),
        ("ALERT_WEBHOOK_URL", "ftp://example.com/hook"),
        ("ALERT_AFTER_SECONDS", "5"),
        ("ALERT_AFTER_SECONDS", "soon"),
    ],
)
def test_alert_settings_rejections(monkeypatch: pytest.MonkeyPatch, name: str, raw: str) -> None:
    monkeypatch.setenv(name, raw)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert set(caught.value.problems) == {name}
