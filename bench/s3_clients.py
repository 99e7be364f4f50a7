"""Which S3 client for MEDIA_STORAGE_URL: installed size, import time, RSS after import, and put+get of 1 MB x 50
against a moto server on loopback, for obstore, aiobotocore, boto3 and minio, each installed alone in its own folder.

for c in obstore==0.12.1 aiobotocore==3.10.0 boto3 minio==7.2.20; do
    pip install -q --target /tmp/s3bench/${c%%=*} $c; done
python -m bench.s3_clients /tmp/s3bench     # needs moto[server] (requirements-dev.txt) in this environment
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.common import ROOT
from tests.processes import free_port

OBJECTS = 50
SIZE = 1024 * 1024
RUNS = 5  # import time: median of this many fresh interpreters

# Each client in a fresh interpreter whose path holds only its own folder (and the standard library): the import's
# cost and the process's RSS (KB, from /proc) right after it, then OBJECTS puts and gets of SIZE bytes, timed.
CHILD = r"""
import asyncio, json, os, sys, time
client, endpoint = sys.argv[1], sys.argv[2]
def rss():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1]) / 1024
rss_base = rss()
started = time.perf_counter()
if client == "obstore":
    import obstore
    from obstore.store import S3Store
elif client == "aiobotocore":
    from aiobotocore.session import get_session
elif client == "boto3":
    import boto3
else:
    import minio
imported = time.perf_counter() - started
rss_import = rss()
data = os.urandom(SIZE)
keys = [f"bench/{i}" for i in range(OBJECTS)]
creds = dict(aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1")

async def run_obstore():
    store = S3Store("bench", endpoint=endpoint, access_key_id="bench", secret_access_key="bench", region="us-east-1",
                    client_options={"allow_http": True})
    for key in keys:
        await obstore.put_async(store, key, data)
    for key in keys:
        got = await obstore.get_async(store, key)
        assert len(await got.bytes_async()) == len(data)

async def run_aiobotocore():
    async with get_session().create_client("s3", endpoint_url=endpoint, **creds) as s3:
        for key in keys:
            await s3.put_object(Bucket="bench", Key=key, Body=data)
        for key in keys:
            got = await s3.get_object(Bucket="bench", Key=key)
            async with got["Body"] as body:
                assert len(await body.read()) == len(data)

def run_boto3():
    s3 = boto3.client("s3", endpoint_url=endpoint, **creds)
    for key in keys:
        s3.put_object(Bucket="bench", Key=key, Body=data)
    for key in keys:
        assert len(s3.get_object(Bucket="bench", Key=key)["Body"].read()) == len(data)

def run_minio():
    s3 = minio.Minio(endpoint.split("//")[1], "bench", "bench", secure=False, region="us-east-1")
    import io
    for key in keys:
        s3.put_object("bench", key, io.BytesIO(data), len(data))
    for key in keys:
        got = s3.get_object("bench", key)
        assert len(got.read()) == len(data)
        got.close(); got.release_conn()

started = time.perf_counter()
if client in ("obstore", "aiobotocore"):
    asyncio.run(globals()["run_" + client]())
else:
    globals()["run_" + client]()
took = time.perf_counter() - started
figures = dict(rss_base_mb=rss_base, import_s=imported, rss_import_mb=rss_import, put_get_s=took, rss_end_mb=rss())
print(json.dumps(figures))
""".replace("SIZE", str(SIZE)).replace("OBJECTS", str(OBJECTS))


def installed_mb(folder: Path) -> float:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) / 1024 / 1024


def measure(client: str, folder: Path, endpoint: str) -> dict[str, float]:
    # HOME: obstore aborts at exit without it (seen with 0.12.1)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ["HOME"],
        "PYTHONPATH": str(folder),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    runs = []
    aborted = 0
    for _ in range(RUNS):
        httpx.delete(f"{endpoint}/moto-api/reset", timeout=10)  # moto forgets the bucket: a fresh one per run
        httpx.put(f"{endpoint}/bench", timeout=10).raise_for_status()
        # -S: no site-packages, so only the client's own folder can be imported from
        out = subprocess.run(
            [sys.executable, "-S", "-c", CHILD, client, endpoint], env=env, capture_output=True, text=True
        )
        # obstore 0.12.1 sometimes aborts (SIGABRT) at interpreter exit after an asyncio (not uvloop) run, once the
        # figures are printed: counted, and the figures kept
        aborted += out.returncode == -6 and out.stdout.startswith("{")
        if out.returncode != 0 and not (out.returncode == -6 and out.stdout.startswith("{")):
            raise SystemExit(f"{client} failed ({out.returncode}):\n{out.stderr[-2000:]}")
        runs.append(json.loads(out.stdout))
    return {
        "installed_mb": installed_mb(folder),
        "import_s": statistics.median(run["import_s"] for run in runs),
        "rss_base_mb": statistics.median(run["rss_base_mb"] for run in runs),
        "rss_import_mb": statistics.median(run["rss_import_mb"] for run in runs),
        "mb_per_s": statistics.median(2 * OBJECTS * SIZE / 1024 / 1024 / run["put_get_s"] for run in runs),
        "rss_end_mb": statistics.median(run["rss_end_mb"] for run in runs),
        "aborted": aborted,
    }


def main() -> None:
    targets = Path(sys.argv[1])
    port = free_port()
    moto = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                httpx.get(endpoint, timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        print(
            "| client | installed, with deps | import | RSS after import (before) | put+get 1 MB x 50 | RSS after "
            "| aborted at exit |"
        )
        print("|---|---|---|---|---|---|---|")
        for client in ("obstore", "aiobotocore", "boto3", "minio"):
            folder = targets / client
            if not folder.is_dir():
                continue
            m = measure(client, folder, endpoint)
            print(
                f"| {client} | {m['installed_mb']:.1f} MB | {m['import_s'] * 1000:.0f} ms | "
                f"{m['rss_import_mb']:.1f} MB ({m['rss_base_mb']:.1f}) | {m['mb_per_s']:.0f} MB/s | "
                f"{m['rss_end_mb']:.1f} MB | {m['aborted']:.0f} of {RUNS} |"
            )
    finally:
        moto.terminate()
        moto.wait(10)


if __name__ == "__main__":
    main()
