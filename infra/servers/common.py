"""Shared plumbing for the real-server launchers: cache, ports, processes, readiness."""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

CONF_DIR = Path(__file__).resolve().parent / "conf"
MAVEN_POM = Path(__file__).resolve().parent / "maven" / "pom.xml"


class ServerError(RuntimeError):
    """A server could not be installed, started or reached."""


def say(message: str) -> None:
    # stderr, so that `eval "$(python -m infra.servers.stack up)"` only sees the exports.
    print(message, file=sys.stderr, flush=True)


def cache_root() -> Path:
    configured = os.environ.get("GLIMPSE_CACHE_DIR")
    root = Path(configured) if configured else Path.home() / ".cache" / "glimpse"
    return root.expanduser().resolve()


def server_cache(name: str, version: str) -> Path:
    path = cache_root() / f"{name}-{version}"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def install_lock(cache_dir: Path) -> Iterator[None]:
    """Serialise installs of one server across processes (e.g. parallel pytest runs)."""
    with open(cache_dir / ".install.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def maven_install(name: str, version: str) -> Path:
    """Copy a server's runtime jars from Maven Central into the cache; return the libs folder."""
    cache_dir = server_cache(name, version)
    libs = cache_dir / "libs"
    done = cache_dir / ".installed"
    with install_lock(cache_dir):
        if done.exists():
            return libs
        if shutil.which("mvn") is None:
            raise ServerError("mvn not found: apt-get install -y maven openjdk-17-jdk-headless")
        # Maven writes target/ next to the pom, so it runs from a copy in the cache.
        pom = cache_dir / "pom.xml"
        shutil.copyfile(MAVEN_POM, pom)
        shutil.rmtree(libs, ignore_errors=True)
        command = [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(pom),
            "-P",
            name,
            f"-Dserver.version={version}",
            f"-Dmaven.repo.local={cache_dir / 'm2'}",
            "dependency:copy-dependencies",
            f"-DoutputDirectory={libs}",
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = (result.stdout + result.stderr).strip().splitlines()[-40:]
            raise ServerError(f"maven could not fetch {name} {version}:\n" + "\n".join(tail))
        done.write_text(f"{name} {version}\n")
    return libs


_handed_out: set[int] = set()
_handed_out_lock = threading.Lock()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A port that is free now, below the kernel's ephemeral range.

    A port from bind(0) lies in the ephemeral range, where any outgoing connection
    on the box may take it as its source port in the seconds before a JVM binds it.
    """
    low = _ephemeral_low()
    top = low - 1 if low > 12000 else 30000
    for _ in range(500):
        port = random.randint(10000, top)
        with _handed_out_lock:
            if port in _handed_out or not _bindable(port):
                continue
            _handed_out.add(port)
            return port
    raise ServerError("no free port found below the ephemeral range")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def render(template_name: str, target: Path, **values: object) -> Path:
    text = (CONF_DIR / template_name).read_text()
    target.write_text(Template(text).substitute({k: str(v) for k, v in values.items()}))
    return target


def make_data_dir(name: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"glimpse-{name}-")).resolve()


def log_tail(path: Path, lines: int = 40) -> str:
    """The log's first error lines (a JVM's shutdown noise buries them) and its last lines."""
    try:
        content = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return f"(no log at {path})"
    errors = [line for line in content if any(word in line for word in ("ERROR", "FATAL", "Exception"))]
    head = ["--- first error lines ---", *errors[:10], "--- last lines ---"] if errors else []
    return "\n".join([*head, *content[-lines:]])


@dataclass
class Server:
    """One running server process, owned by this launcher through its process group."""

    name: str
    version: str
    pid: int
    data_dir: Path
    log_path: Path
    env: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def to_state(self) -> dict[str, object]:
        return {
            "name": self.name,
            "version": self.version,
            "pid": self.pid,
            "data_dir": str(self.data_dir),
            "log": str(self.log_path),
            "env": self.env,
            "timings": self.timings,
        }

    @classmethod
    def from_state(cls, state: dict[str, object]) -> Server:
        env = state["env"]
        timings = state.get("timings", {})
        assert isinstance(env, dict) and isinstance(timings, dict)
        return cls(
            name=str(state["name"]),
            version=str(state["version"]),
            pid=int(str(state["pid"])),
            data_dir=Path(str(state["data_dir"])),
            log_path=Path(str(state["log"])),
            env={str(k): str(v) for k, v in env.items()},
            timings={str(k): float(v) for k, v in timings.items()},
        )

    def is_ours(self) -> bool:
        """True while the pid is alive and still the process we started.

        Every server runs inside its data dir (versitygw moves on into its bucket
        root), so a recycled pid of some unrelated process is never signalled.
        """
        try:
            if not Path(os.readlink(f"/proc/{self.pid}/cwd")).is_relative_to(self.data_dir):
                return False
            with open(f"/proc/{self.pid}/stat") as stat:
                return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return self.is_ours()

    def stop(self, timeout: float = 20.0) -> None:
        if self.alive():
            _signal_group(self.pid, signal.SIGTERM)
            if not self._wait_gone(timeout):
                _signal_group(self.pid, signal.SIGKILL)
                self._wait_gone(5.0)
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def _wait_gone(self, timeout: float) -> bool:
        if self.process is not None:
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.is_ours():
                return True
            time.sleep(0.2)
        return False


def _signal_group(pid: int, sig: signal.Signals) -> None:
    # Each server is a session leader (start_new_session), so its pgid is its pid.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def spawn(command: Sequence[str], data_dir: Path, log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            list(command),
            cwd=data_dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_ready(
    server: Server,
    probe: Callable[[], None],
    deadline_s: float,
    interval_s: float = 0.5,
) -> None:
    """Call probe until it returns without raising; stop and raise with the log tail otherwise."""
    started = time.monotonic()
    last_error: BaseException | None = None
    while time.monotonic() - started < deadline_s:
        if not server.alive():
            break
        try:
            probe()
            return
        except Exception as error:  # noqa: BLE001, RUF100 - any failure means "not ready yet"
            last_error = error
        time.sleep(interval_s)
    reason = "exited" if not server.alive() else f"was not ready after {deadline_s:.0f}s"
    message = (
        f"{server.name} {reason} (last probe error: {last_error!r}).\n"
        f"--- tail of {server.log_path} ---\n{log_tail(server.log_path)}"
    )
    server.stop(timeout=5.0)
    raise ServerError(message)


@contextlib.contextmanager
def timed(server: str, phase: str, timings: dict[str, float]) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        elapsed = time.monotonic() - started
        timings[phase] = round(elapsed, 2)
        say(f"[{server}] {phase}: {elapsed:.1f}s")


def java() -> str:
    found = shutil.which("java")
    if found is None:
        raise ServerError("java not found: apt-get install -y openjdk-17-jdk-headless")
    return found
