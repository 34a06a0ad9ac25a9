"""The processes under test, each started by the bench and stopped by its process id."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
JWT_SECRET = "bench-secret-of-enough-length-for-hs256-tokens"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env(data_dir: Path, extra: dict[str, str]) -> dict[str, str]:
    return (
        os.environ
        | {
            "GLIMPSE_DATA_DIR": str(data_dir),
            "GLIMPSE_JWT_SECRET": JWT_SECRET,
            "GLIMPSE_LOGIN_ATTEMPTS_PER_MINUTE": "100000",
            "GLIMPSE_WRITES_PER_MINUTE": "1000000",
            "PYTHONPATH": str(ROOT),
        }
        | extra
    )


class Proc:
    """A child process, its log, and the CPU time it used (from /proc, Linux)."""

    def __init__(self, stack: ExitStack, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        log_file = stack.enter_context(open(log_path, "wb"))  # noqa: SIM115 - closed by the stack
        self.popen = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        stack.callback(self.stop)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def cpu_seconds(self) -> float:
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def disk_read_bytes(self) -> int:
        """Bytes the process had read from storage (page-cache misses, not every read call)."""
        try:
            for line in Path(f"/proc/{self.pid}/io").read_text().splitlines():
                if line.startswith("read_bytes:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    def tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.popen.poll() is not None:
            return
        self.popen.terminate()
        try:
            self.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)


def glimpse(stack: ExitStack, args: list[str], env: dict[str, str], log_path: Path) -> Proc:
    return Proc(stack, [sys.executable, "-m", "infra.cli", *args], env, log_path)


def wait_ready(base: str, proc: Proc, seconds: float, path: str = "/readyz") -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{base}{path}", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if not proc.alive() or time.monotonic() > deadline:
            raise RuntimeError(f"{base} did not become ready in {seconds:.0f} s:\n{proc.tail()}")
        time.sleep(0.2)


def serve(
    stack: ExitStack, env: dict[str, str], log_path: Path, *extra: str, ready_seconds: float = 600
) -> tuple[str, Proc]:
    port = free_port()
    proc = glimpse(stack, ["serve", "--port", str(port), "--log-level", "warning", *extra], env, log_path)
    base = f"http://127.0.0.1:{port}"
    wait_ready(base, proc, ready_seconds)
    return base, proc


class CpuWindow:
    """CPU seconds, and bytes read from storage, of some processes over a stretch of wall time."""

    def __init__(self, procs: dict[str, Proc]) -> None:
        self.procs = procs
        self.start = {name: p.cpu_seconds() for name, p in procs.items()}
        self.start_read = {name: p.disk_read_bytes() for name, p in procs.items()}
        self.t0 = time.monotonic()

    def percent(self) -> dict[str, float]:
        wall = max(1e-9, time.monotonic() - self.t0)
        return {name: round(100 * (p.cpu_seconds() - self.start[name]) / wall, 1) for name, p in self.procs.items()}

    def disk_read_kib(self) -> dict[str, float]:
        return {name: (p.disk_read_bytes() - self.start_read[name]) / 1024 for name, p in self.procs.items()}


def set_priority(nice: int) -> int:
    """Add `nice` to this process's niceness (the servers and workers it starts inherit it).

    On a machine shared with other work, a higher priority for the generator and the
    processes under test keeps the others' load out of the figures. Returns the
    niceness in force (unchanged when not allowed).
    """
    if nice:
        try:
            return os.nice(nice)
        except OSError:
            pass
    return os.nice(0)
