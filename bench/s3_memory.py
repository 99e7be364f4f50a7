"""Memory of a large file through S3Storage (app/media/storage.py): the peak RSS growth of this process while a file
of SIZE_MB is put from its path and then streamed back, against moto on loopback. Bounded means far below the size.

python -m bench.s3_memory            # needs moto[server] (requirements-dev.txt)
"""

from __future__ import annotations

import hashlib
import os
import resource
import sys
import tempfile
import uuid
from pathlib import Path

import httpx
import uvloop

from app.media.storage import S3Storage
from app.media.store import Served
from app.settings import MediaBucket
from bench.common import ROOT
from tests.media.conftest import MotoServer

SIZE_MB = int(sys.argv[1]) if len(sys.argv) > 1 else 200


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run(endpoint: str, path: Path) -> None:
    bucket = MediaBucket("bench-memory", "media", "us-east-1", endpoint, "bench", "bench-secret")
    storage = S3Storage(bucket)
    before = peak_mb()
    placed = await storage.put(uuid.uuid4(), path)
    after_put = peak_mb()
    file = Served("application/octet-stream", None, placed.size, None, placed.object_key, None)
    chunks = await storage.open(file)
    assert chunks is not None
    hasher, size = hashlib.sha256(), 0
    async for chunk in chunks:  # as the route sends it: chunk by chunk
        hasher.update(chunk)
        size += len(chunk)
    after_get = peak_mb()
    assert size == placed.size and hasher.hexdigest() == placed.sha256
    print(f"file: {SIZE_MB} MB; peak RSS before {before:.1f} MB")
    print(f"put from its path: peak RSS +{after_put - before:.1f} MB")
    print(f"streamed back: peak RSS +{after_get - before:.1f} MB (both, from the start)")


def main() -> None:
    folder = Path(tempfile.mkdtemp())
    path = folder / "large.bin"
    with path.open("wb") as file:
        for _ in range(SIZE_MB):
            file.write(os.urandom(1024 * 1024))
    server = MotoServer(folder).start()
    httpx.put(f"{server.endpoint}/bench-memory", timeout=10).raise_for_status()
    try:
        uvloop.run(run(server.endpoint, path))
    finally:
        server.stop()
        path.unlink()


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
