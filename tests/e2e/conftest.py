"""The e2e tier talks HTTP to a real `glimpse serve` process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start the embedded app as its own process; stop it at the end of the session."""
    data_dir: Path = tmp_path_factory.mktemp("live-data")
    port = _free_port()
    env = os.environ | {
        "GLIMPSE_JWT_SECRET": "e2e-secret-of-enough-length-for-hs256",
        "GLIMPSE_LOGIN_ATTEMPTS_PER_MINUTE": "1000",
        "GLIMPSE_WRITES_PER_MINUTE": "100000",
    }
    log_path = data_dir.parent / "server.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "infra.cli", "serve", "--port", str(port), "--data-dir", str(data_dir)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"server did not start:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.1)
        try:
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
