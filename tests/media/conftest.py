"""Media tests use the webhook tests' database fixture, and a real S3-compatible server on loopback (moto's server
mode, a child process) with a fresh bucket per test.

They run on uvloop, the event loop the app runs on (app/hypercorn_config.py): obstore 0.12.1 sometimes aborts the
interpreter at exit after being used from asyncio's own loop (docs/BENCHMARKS.md), never in our runs from uvloop's."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import httpx
import pytest
import uvloop

from app.settings import MediaBucket
from tests.processes import free_port
from tests.webhooks.conftest import database

__all__ = ["database"]


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> Mapping[str, Callable[[], uvloop.Loop]]:
    return {"uvloop": uvloop.new_event_loop}


class MotoServer:
    """moto's S3 server (a child process) on a free loopback port; it keeps every bucket in memory."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = folder / f"moto-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> MotoServer:
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(
                [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        with httpx.Client(timeout=2) as client:
            for _ in range(300):  # moto has no readiness signal: poll until it answers (at most 30 s)
                try:
                    client.get(f"{self.endpoint}/moto-api/")
                    return self
                except httpx.TransportError:
                    with contextlib.suppress(subprocess.TimeoutExpired):  # the pause between polls; an exit ends it
                        self.process.wait(timeout=0.1)
                    assert self.process.poll() is None, f"moto exited: {self.log.read_text()}"
        self.stop()
        raise AssertionError(f"moto did not start: {self.log.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One moto server for the session; each test has a bucket of its own."""
    server = MotoServer(tmp_path_factory.mktemp("moto")).start()
    try:
        yield server.endpoint
    finally:
        server.stop()


def new_bucket(endpoint: str) -> MediaBucket:
    """A new, empty bucket, as MEDIA_STORAGE_URL=s3://<bucket>/gateway/media would name it."""
    name = f"media-{uuid.uuid4().hex[:16]}"
    httpx.put(f"{endpoint}/{name}", timeout=10).raise_for_status()
    return MediaBucket(
        bucket=name, prefix="gateway/media", region="us-east-1", endpoint_url=endpoint,
        access_key_id="test-access-key", secret_access_key="test-secret-access-key",
    )  # fmt: skip


@pytest.fixture
def bucket(s3_endpoint: str) -> MediaBucket:
    return new_bucket(s3_endpoint)


def objects(bucket: MediaBucket) -> dict[str, bytes]:
    """Every object in the bucket with its bytes, read with boto3 (moto's own client), not the code under test."""
    import boto3  # moto[server]'s dependency

    client = boto3.client(
        "s3", endpoint_url=bucket.endpoint_url, region_name=bucket.region, aws_access_key_id=bucket.access_key_id,
        aws_secret_access_key=bucket.secret_access_key,
    )  # fmt: skip
    listed = client.list_objects_v2(Bucket=bucket.bucket).get("Contents", [])
    return {item["Key"]: client.get_object(Bucket=bucket.bucket, Key=item["Key"])["Body"].read() for item in listed}
