"""The scale stack: Kafka, Cassandra, Redis and S3 started together.

    python -m infra.servers.stack up [--only kafka,redis] [--port kafka=9092]
    python -m infra.servers.stack env | status | down | install [--only ...]

`up` prints `export GLIMPSE_...=` lines on stdout (progress goes to stderr), so
`eval "$(python -m infra.servers.stack up)"` configures the current shell.
The pids and endpoints are kept in a JSON state file for `down` and `status`.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from infra.servers import cassandra, kafka, redis_server, s3
from infra.servers.common import Server, ServerError, say, timed

REPO_ROOT = Path(__file__).resolve().parents[2]

# Slowest first, so that it gets a head start on the shared cores.
STARTERS: dict[str, Callable[[int | None], Server]] = {
    "cassandra": cassandra.start,
    "kafka": kafka.start,
    "redis": redis_server.start,
    "s3": s3.start,
}
INSTALLERS: dict[str, Callable[[], object]] = {
    "cassandra": cassandra.install,
    "kafka": kafka.install,
    "redis": redis_server.install,
    "s3": s3.install,
}
PROBES: dict[str, Callable[[dict[str, str]], None]] = {
    "cassandra": cassandra.probe,
    "kafka": kafka.probe,
    "redis": redis_server.probe,
    "s3": s3.probe,
}


def state_path() -> Path:
    configured = os.environ.get("GLIMPSE_STACK_FILE")
    return Path(configured) if configured else REPO_ROOT / ".glimpse-stack.json"


def select(only: Iterable[str] | None) -> list[str]:
    if only is None:
        return list(STARTERS)
    wanted = {name.strip() for name in only if name.strip()}
    unknown = wanted - set(STARTERS)
    if unknown:
        raise ServerError(f"unknown servers {sorted(unknown)}; choose from {list(STARTERS)}")
    return [name for name in STARTERS if name in wanted]


@dataclass
class StackHandle:
    servers: list[Server] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for server in self.servers:
            merged.update(server.env)
        return merged

    def exports(self) -> str:
        return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(self.env().items()))

    def stop(self) -> None:
        # Cassandra drains for a few seconds on SIGTERM; stop everything side by side.
        if self.servers:
            with ThreadPoolExecutor(len(self.servers)) as pool:
                list(pool.map(lambda server: server.stop(), self.servers))
        self.servers = []

    def to_state(self) -> dict[str, object]:
        return {"servers": [server.to_state() for server in self.servers]}

    @classmethod
    def from_state(cls, state: Mapping[str, object]) -> StackHandle:
        entries = state.get("servers", [])
        assert isinstance(entries, list)
        return cls([Server.from_state(entry) for entry in entries])

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def start_stack(
    only: Iterable[str] | None = None,
    ports: Mapping[str, int] | None = None,
    detach: bool = False,
) -> StackHandle:
    """Install (first time) and start the selected servers in parallel, ready to use.

    Unless detach is set, the servers are also stopped when this Python process exits.
    """
    names = select(only)
    ports = ports or {}
    started = time.monotonic()
    with ThreadPoolExecutor(max(1, len(names))) as pool:
        futures = {name: pool.submit(STARTERS[name], ports.get(name)) for name in names}
    servers: list[Server] = []
    errors: list[str] = []
    for name, future in futures.items():
        error = future.exception()
        if error is None:
            servers.append(future.result())
        else:
            errors.append(f"{name}: {error}")
    handle = StackHandle(servers)
    if errors:
        handle.stop()
        raise ServerError("\n\n".join(errors))
    if not detach:
        atexit.register(handle.stop)
    say(f"[stack] ready in {time.monotonic() - started:.1f}s")
    for server in servers:
        phases = ", ".join(f"{phase} {seconds:.1f}s" for phase, seconds in server.timings.items())
        say(f"[stack]   {server.name:<9} {server.version:<18} pid {server.pid:<7} {phases}")
    return handle


def load_state() -> StackHandle | None:
    path = state_path()
    if not path.exists():
        return None
    return StackHandle.from_state(json.loads(path.read_text()))


def save_state(handle: StackHandle) -> None:
    path = state_path()
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(json.dumps(handle.to_state(), indent=2) + "\n")
    partial.replace(path)


def cmd_up(only: list[str] | None, ports: dict[str, int]) -> int:
    existing = load_state()
    if existing is not None:
        if all(server.alive() for server in existing.servers):
            say(f"[stack] already running (state in {state_path()})")
            sys.stdout.write(existing.exports())
            return 0
        say(f"[stack] {state_path()} names servers that are gone: run `down` first")
        return 1
    handle = start_stack(only, ports, detach=True)
    save_state(handle)
    say(f"[stack] state written to {state_path()}")
    sys.stdout.write(handle.exports())
    return 0


def cmd_install(only: list[str] | None) -> int:
    """Fill the cache without starting anything, e.g. as a separate, timed CI step."""

    def install(name: str) -> None:
        with timed(name, "install", {}):
            INSTALLERS[name]()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(install, select(only)))
    return 0


def cmd_down() -> int:
    handle = load_state()
    if handle is None:
        say("[stack] nothing to stop")
        return 0
    names = [server.name for server in handle.servers]
    handle.stop()
    state_path().unlink(missing_ok=True)
    say(f"[stack] stopped {', '.join(names) or 'nothing'}")
    return 0


def cmd_env() -> int:
    handle = load_state()
    if handle is None:
        say("[stack] not running")
        return 1
    sys.stdout.write(handle.exports())
    return 0


def cmd_status() -> int:
    handle = load_state()
    if handle is None:
        print("stack: not running")
        return 1
    healthy = True
    for server in handle.servers:
        if not server.alive():
            status = "gone"
        else:
            try:
                PROBES[server.name](server.env)
                status = "ok"
            except Exception as error:  # noqa: BLE001, RUF100 - report any probe failure, don't crash
                status = f"not answering ({error})"
        healthy = healthy and status == "ok"
        endpoint = " ".join(f"{k}={v}" for k, v in server.env.items() if "SECRET" not in k)
        print(f"{server.name:<9} {server.version:<18} pid {server.pid:<7} {status:<4} {endpoint}")
    return 0 if healthy else 1


def parse_ports(values: list[str]) -> dict[str, int]:
    ports: dict[str, int] = {}
    for value in values:
        name, _, port = value.partition("=")
        if name not in STARTERS or not port.isdigit():
            raise ServerError(f"--port wants NAME=NUMBER with NAME in {list(STARTERS)}, got {value!r}")
        ports[name] = int(port)
    return ports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.servers.stack", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["up", "down", "status", "env", "install"])
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(STARTERS)}")
    parser.add_argument(
        "--port", action="append", default=[], metavar="NAME=PORT", help="fixed port for a server (default: a free one)"
    )
    args = parser.parse_args(argv)
    only = args.only.split(",") if args.only else None
    try:
        if args.command == "up":
            return cmd_up(only, parse_ports(args.port))
        if args.command == "install":
            return cmd_install(only)
        if args.command == "down":
            return cmd_down()
        if args.command == "env":
            return cmd_env()
        return cmd_status()
    except ServerError as error:
        say(f"[stack] {error}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
