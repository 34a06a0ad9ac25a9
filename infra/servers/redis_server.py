"""Redis from Debian's `redis-server` package, one throwaway instance per start."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

from infra.servers.common import (
    Server,
    ServerError,
    free_port,
    make_data_dir,
    say,
    spawn,
    timed,
    wait_ready,
)

NAME = "redis"


def install() -> str:
    """Return the redis-server binary, installing Debian's package when it is missing.

    apt owns the binary (it needs the distribution's jemalloc and lzf libraries),
    so unlike the Java servers nothing is kept in the Glimpse cache.
    """
    found = shutil.which("redis-server")
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ServerError("redis-server not found: apt-get install -y redis-server")
    say("[redis] installing Debian package redis-server")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "redis-server"]
    # apt's chatter goes to stderr: stdout carries only the stack's export lines.
    if subprocess.run(command, env=env, stdout=sys.stderr, check=False).returncode != 0:
        # A fresh machine has no package lists yet.
        subprocess.run(["apt-get", "update", "-q"], env=env, stdout=sys.stderr, check=True)
        subprocess.run(command, env=env, stdout=sys.stderr, check=True)
    found = shutil.which("redis-server")
    if not found:
        raise ServerError("apt-get installed redis-server but it is not on PATH")
    return found


def version(binary: str) -> str:
    output = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"v=(\S+)", output)
    return match.group(1) if match else "unknown"


def probe(env: dict[str, str]) -> None:
    import redis

    client = redis.Redis.from_url(env["GLIMPSE_REDIS_URL"], socket_timeout=2)
    try:
        if client.ping() is not True:
            raise ServerError("PING did not answer PONG")
    finally:
        client.close()


def start(port: int | None = None, deadline_s: float = 30.0) -> Server:
    timings: dict[str, float] = {}
    with timed(NAME, "install", timings):
        binary = install()
    port = port or free_port()
    data_dir = make_data_dir(NAME)
    command = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data_dir),
        # Test data is throwaway: no RDB snapshots, no AOF.
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--logfile",
        "",
    ]
    log_path = data_dir / "server.log"
    with timed(NAME, "start", timings):
        process = spawn(command, data_dir, log_path)
        server = Server(
            name=NAME,
            version=version(binary),
            pid=process.pid,
            data_dir=data_dir,
            log_path=log_path,
            env={"GLIMPSE_REDIS_URL": f"redis://127.0.0.1:{port}/0"},
            timings=timings,
            process=process,
        )
        wait_ready(server, lambda: probe(server.env), deadline_s, interval_s=0.1)
    return server
