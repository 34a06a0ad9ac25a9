"""The e2e tier talks HTTP to real `glimpse` processes: the embedded app, and the
scale stack (API processes plus a projection worker on Kafka, Cassandra, Redis, S3)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

SCALE_VARS = ("GLIMPSE_KAFKA_BOOTSTRAP", "GLIMPSE_CASSANDRA_HOSTS", "GLIMPSE_REDIS_URL", "GLIMPSE_S3_ENDPOINT")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _common_env(data_dir: Path) -> dict[str, str]:
    return os.environ | {
        "GLIMPSE_DATA_DIR": str(data_dir),
        "GLIMPSE_JWT_SECRET": "e2e-secret-of-enough-length-for-hs256",
        "GLIMPSE_LOGIN_ATTEMPTS_PER_MINUTE": "1000",
        "GLIMPSE_WRITES_PER_MINUTE": "100000",
    }


def _spawn(stack: ExitStack, args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    log_file = stack.enter_context(open(log_path, "wb"))  # noqa: SIM115 - closed by the stack
    proc = subprocess.Popen(
        [sys.executable, "-m", "infra.cli", *args], stdout=log_file, stderr=subprocess.STDOUT, env=env
    )

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()

    stack.callback(stop)
    return proc


def _wait_ready(base: str, proc: subprocess.Popen[bytes], log_path: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{base} did not become ready:\n{log_path.read_text()[-4000:]}")
        time.sleep(0.2)


def _serve(stack: ExitStack, env: dict[str, str], log_dir: Path, name: str, *extra: str) -> str:
    port = _free_port()
    log_path = log_dir / f"{name}.log"
    proc = _spawn(stack, ["serve", "--port", str(port), *extra], env, log_path)
    base = f"http://127.0.0.1:{port}"
    _wait_ready(base, proc, log_path, 90)
    return base


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The embedded app as its own process."""
    data_dir = tmp_path_factory.mktemp("live-data")
    with ExitStack() as stack:
        yield _serve(stack, _common_env(data_dir), data_dir.parent, "embedded")


class ScaleStack:
    """Separate command and query services, the projection worker and the media worker,
    isolated from other runs by unique names."""

    def __init__(self, command: str, query: str, combined: str, name: str = "") -> None:
        self.command = command
        self.query = query
        self.combined = combined
        self.name = name  # the keyspace, topic prefix, worker group, Redis prefix and bucket of this run


@pytest.fixture(scope="session")
def scale_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScaleStack]:
    missing = [v for v in SCALE_VARS if not os.environ.get(v)]
    if missing:
        pytest.skip(f"the scale stack is not running ({', '.join(missing)} unset): `make test` starts it")
    data_dir = tmp_path_factory.mktemp("scale-data")
    name = f"e2e{uuid.uuid4().hex[:10]}"
    env = _common_env(data_dir) | {
        "GLIMPSE_MODE": "scale",
        "GLIMPSE_CASSANDRA_KEYSPACE": name,
        "GLIMPSE_KAFKA_TOPIC_PREFIX": name,
        "GLIMPSE_WORKER_GROUP": name,
        "GLIMPSE_REDIS_PREFIX": f"{name}:",
        "GLIMPSE_S3_BUCKET": name,
        "GLIMPSE_CONSISTENCY_WAIT_SECONDS": "20",
    }
    with ExitStack() as stack:
        # The first API process creates the keyspace, tables and topics; the others find them.
        combined = _serve(stack, env | {"GLIMPSE_SHARD_ID": "1"}, data_dir.parent, "scale-all", "--mode", "scale")
        worker_log = data_dir.parent / "scale-worker.log"
        worker = _spawn(stack, ["worker", "--log-level", "warn"], env, worker_log)
        media_log = data_dir.parent / "scale-media-worker.log"
        media_worker = _spawn(stack, ["media-worker"], env | {"GLIMPSE_SHARD_ID": "4"}, media_log)
        command = _serve(stack, env | {"GLIMPSE_SHARD_ID": "2"}, data_dir.parent, "scale-command", "--role", "command")
        query = _serve(stack, env | {"GLIMPSE_SHARD_ID": "3"}, data_dir.parent, "scale-query", "--role", "query")
        workers = ((worker, worker_log), (media_worker, media_log))
        for proc, log_path in workers:
            if proc.poll() is not None:
                raise RuntimeError(f"a worker stopped:\n{log_path.read_text()[-4000:]}")
        yield ScaleStack(command, query, combined, name)
        for proc, log_path in workers:
            if proc.poll() is not None:
                raise RuntimeError(f"a worker stopped during the tests:\n{log_path.read_text()[-4000:]}")


@pytest.fixture(params=["embedded", "scale"])
def api_base(request: pytest.FixtureRequest) -> str:
    """The same HTTP tests run against each mode."""
    if request.param == "embedded":
        return str(request.getfixturevalue("live_server"))
    return request.getfixturevalue("scale_stack").combined
