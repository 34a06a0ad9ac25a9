"""The `glimpse` command: serve, seed, and room for worker / replay / bench."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, cast

from infra.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = Path(args.data_dir)
    if getattr(args, "host", None):
        overrides["host"] = args.host
    if getattr(args, "port", None):
        overrides["port"] = args.port
    if getattr(args, "mode", None):
        overrides["mode"] = args.mode
    settings = Settings(**overrides)
    if hasattr(args, "mode"):
        args.mode = settings.mode
    return settings


_SERVE_ROLE = "GLIMPSE_SERVE_ROLE"  # how `glimpse serve --workers N` tells its worker processes the role


def _hold_jobs_lock(data_dir: Path) -> bool:
    """True in the one serving process (of several) that runs the periodic jobs: they write
    events, and N copies of them racing would append the same facts N times."""
    import fcntl

    data_dir.mkdir(parents=True, exist_ok=True)
    handle = open(data_dir / "serve-jobs.lock", "a")  # noqa: SIM115 - held open for the process's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return False
    _JOBS_LOCK.append(handle)
    return True


_JOBS_LOCK: list[Any] = []


def scale_worker_app() -> Any:
    """The app of one `glimpse serve --mode scale --workers N` process (a uvicorn factory).

    The Cassandra read model's driver calls block the process's event loop while they wait;
    several processes keep the cores busy while some of them wait (the driver is thread- and
    process-safe; the embedded SQLite mode never runs this way)."""
    import atexit
    import os
    from concurrent.futures import ThreadPoolExecutor

    from infra.app import Role, create_app
    from infra.bootstrap_scale import build_scale
    from infra.http.threaded import serving

    role = cast("Role", os.environ.get(_SERVE_ROLE, "all"))
    settings = Settings()
    # uvicorn calls this factory on its running event loop; building connects with asyncio.run
    # (topics), so it runs in a thread of its own.
    with ThreadPoolExecutor(1) as pool:
        container = pool.submit(build_scale, settings, role).result()
    if not _hold_jobs_lock(settings.data_dir):
        container.jobs.clear()
    atexit.register(container.close)
    return serving(create_app(container, role=role), settings.api_request_threads)


def _serve_workers(args: argparse.Namespace, settings: Settings) -> int:
    import os

    import uvicorn

    from infra.bootstrap_scale import build_scale

    # Keyspace, tables and topics made once here, not raced by N processes at start.
    build_scale(settings, role=args.role).close()
    # The worker processes read their settings from the environment, as any Settings() does.
    os.environ.update(
        {
            "GLIMPSE_MODE": "scale",
            "GLIMPSE_DATA_DIR": str(settings.data_dir),
            "GLIMPSE_HOST": settings.host,
            "GLIMPSE_PORT": str(settings.port),
            _SERVE_ROLE: args.role,
        }
    )
    print(
        f"Glimpse (scale, {args.role}, {args.workers} processes) on http://{settings.host}:{settings.port}", flush=True
    )
    uvicorn.run(
        "infra.cli:scale_worker_app",
        factory=True,
        workers=args.workers,
        host=settings.host,
        port=settings.port,
        log_level=args.log_level,
        access_log=False,
    )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from infra.app import create_app
    from infra.bootstrap import build_embedded
    from infra.http.threaded import serving

    settings = _settings(args)
    started = time.monotonic()
    workers = args.workers if args.workers is not None else settings.api_workers
    if workers > 1:
        if args.mode != "scale":
            print("--workers needs --mode scale: the embedded mode is one process (SQLite, in-process projector)")
            return 2
        if args.seed_if_empty:
            print("--seed-if-empty is for the embedded mode")
            return 2
        args.workers = workers
        return _serve_workers(args, settings)
    if args.mode == "scale":
        from infra.bootstrap_scale import build_scale

        container = build_scale(settings, role=args.role)
    else:
        container = build_embedded(settings)
    if args.seed_if_empty and args.mode == "embedded" and container.read.count("accounts", {}) == 0:
        from infra.demo.seed import seed

        report = seed(container)
        print(report.summary())
    app: Any = create_app(container, role=args.role)
    if args.mode == "scale":
        app = serving(app, settings.api_request_threads)
    print(
        f"Glimpse ({args.mode}, {args.role}) is up in {time.monotonic() - started:.1f}s: http://{settings.host}:{settings.port}"
    )
    print(f"  API docs: http://{settings.host}:{settings.port}/docs")
    demo = settings.data_dir / "demo-login.txt"
    if demo.exists():
        print(f"  demo login: {demo.read_text().strip()}")
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=args.log_level, access_log=False)
    container.close()
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    from infra.bootstrap import build_embedded
    from infra.demo.seed import seed

    container = build_embedded(_settings(args))
    report = seed(container, users=args.users)
    print(report.summary())
    container.close()
    return 0


def cmd_media_worker(args: argparse.Namespace) -> int:
    from infra.media.kafka_worker import run_media_worker

    return run_media_worker(_settings(args))


def cmd_worker(args: argparse.Namespace) -> int:
    from infra.worker.bootstrap import run_worker

    return run_worker(_settings(args), log_level=args.log_level)


def _checkout_on_path() -> None:
    # bench/ lives in the source checkout, not in the installed package.
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)


def cmd_bench(args: argparse.Namespace) -> int:
    _checkout_on_path()
    from bench.main import run

    return run(args)


def _bench_arguments(parser: argparse.ArgumentParser) -> None:
    _checkout_on_path()
    try:
        from bench.main import add_arguments
    except ImportError:  # an installed copy without the checkout: `glimpse bench` then says so when run
        return
    add_arguments(parser)


def cmd_replay_or_digest(args: argparse.Namespace) -> int:
    from infra.replay_cli import main as replay_main

    return replay_main(args.command, args, _settings(args))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="glimpse", description="Glimpse: event-sourced photo sharing backend")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the embedded app (one process, SQLite, local media)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--data-dir")
    serve.add_argument(
        "--mode", choices=["embedded", "scale"], default=None, help="embedded (SQLite, default) or scale (servers)"
    )
    serve.add_argument("--role", choices=["all", "command", "query"], default="all", help="which routes to serve")
    serve.add_argument("--seed-if-empty", action="store_true", help="load demo data into an empty data dir")
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        help="scale mode: API processes sharing the port (default GLIMPSE_API_WORKERS, 1)",
    )
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    serve.set_defaults(func=cmd_serve)

    seed_cmd = sub.add_parser("seed", help="load demo data (users, follows, posts, stories, engagement)")
    seed_cmd.add_argument("--data-dir")
    seed_cmd.add_argument("--users", type=int, default=300)
    seed_cmd.set_defaults(func=cmd_seed)

    worker = sub.add_parser("worker", help="run the projection worker (Kafka -> projections -> Cassandra)")
    worker.add_argument("--log-level", default="info", choices=["crit", "error", "warn", "info", "debug"])
    worker.set_defaults(func=cmd_worker)

    media_worker = sub.add_parser("media-worker", help="make renditions for uploads (scale stack: the media topic)")
    media_worker.set_defaults(func=cmd_media_worker)

    bench = sub.add_parser("bench", help="the feed benchmark (bench/README.md): DSB mix, push / pull / hybrid")
    _bench_arguments(bench)
    bench.set_defaults(func=cmd_bench)

    replay = sub.add_parser(
        "replay", help="rebuild read models from the start of the log beside the live ones, then switch (blue/green)"
    )
    digest = sub.add_parser("digest", help="a stable hash of each read model's content")
    from infra.replay_cli import add_arguments as replay_arguments

    replay_arguments(replay, digest)
    replay.set_defaults(func=cmd_replay_or_digest)
    digest.set_defaults(func=cmd_replay_or_digest)

    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
