"""S3 API server: versitygw (Apache-2.0) in posix mode over a temp folder.

Built once with `go install` from the Go module proxy into the Glimpse cache.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from infra.servers.common import (
    Server,
    ServerError,
    free_port,
    install_lock,
    make_data_dir,
    server_cache,
    spawn,
    timed,
    wait_ready,
)

NAME = "versitygw"
VERSION = "v1.8.0"
MODULE = "github.com/versity/versitygw/cmd/versitygw"
# Fixed test credentials: the server only ever listens on 127.0.0.1.
ACCESS_KEY = "glimpse-test-access"
SECRET_KEY = "glimpse-test-secret-key"
REGION = "us-east-1"
READY_BUCKET = "glimpse-ready"


def install(version: str = VERSION) -> Path:
    cache_dir = server_cache(NAME, version)
    binary = cache_dir / "bin" / "versitygw"
    with install_lock(cache_dir):
        if binary.exists():
            return binary
        go = shutil.which("go")
        if go is None:
            raise ServerError("go not found: the Go toolchain is needed to build versitygw")
        # Module and build caches stay inside the cache folder and go once the binary exists.
        scratch = cache_dir / "build"
        env = {
            **os.environ,
            "GOBIN": str(binary.parent),
            "GOMODCACHE": str(scratch / "mod"),
            "GOCACHE": str(scratch / "cache"),
            "GOFLAGS": "-modcacherw",
        }
        result = subprocess.run(
            [go, "install", f"{MODULE}@{version}"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ServerError(f"go install {MODULE}@{version} failed:\n{result.stderr[-4000:]}")
        shutil.rmtree(scratch, ignore_errors=True)
    return binary


def client(env: dict[str, str]) -> Any:
    """A boto3 S3 client for this server, configured as the application would be."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=env["GLIMPSE_S3_ENDPOINT"],
        aws_access_key_id=env["GLIMPSE_S3_ACCESS_KEY"],
        aws_secret_access_key=env["GLIMPSE_S3_SECRET_KEY"],
        region_name=env.get("GLIMPSE_S3_REGION", REGION),
        config=Config(
            s3={"addressing_style": "path"},
            signature_version="s3v4",
            connect_timeout=2,
            read_timeout=10,
            retries={"max_attempts": 1},
        ),
    )


def probe(env: dict[str, str]) -> None:
    s3 = client(env)
    try:
        s3.create_bucket(Bucket=READY_BUCKET)
        names = [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]
        if READY_BUCKET not in names:
            raise ServerError(f"bucket {READY_BUCKET} not listed: {names}")
        s3.delete_bucket(Bucket=READY_BUCKET)
    finally:
        s3.close()


def start(port: int | None = None, version: str = VERSION, deadline_s: float = 30.0) -> Server:
    timings: dict[str, float] = {}
    with timed("s3", "install", timings):
        binary = install(version)
    port = port or free_port()
    data_dir = make_data_dir("s3")
    root = data_dir / "buckets"
    root.mkdir()
    command = [
        str(binary),
        "--port",
        f"127.0.0.1:{port}",
        "--access",
        ACCESS_KEY,
        "--secret",
        SECRET_KEY,
        "--region",
        REGION,
        # One log line per request would swamp the log in load tests.
        "--quiet",
        "posix",
        str(root),
    ]
    log_path = data_dir / "server.log"
    with timed("s3", "start", timings):
        process = spawn(command, data_dir, log_path)
        server = Server(
            name="s3",
            version=f"versitygw {version}",
            pid=process.pid,
            data_dir=data_dir,
            log_path=log_path,
            env={
                "GLIMPSE_S3_ENDPOINT": f"http://127.0.0.1:{port}",
                "GLIMPSE_S3_ACCESS_KEY": ACCESS_KEY,
                "GLIMPSE_S3_SECRET_KEY": SECRET_KEY,
                "GLIMPSE_S3_REGION": REGION,
            },
            timings=timings,
            process=process,
        )
        wait_ready(server, lambda: probe(server.env), deadline_s, interval_s=0.2)
    return server
