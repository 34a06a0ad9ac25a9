"""The `glimpse` command: serve, seed, and room for worker / replay / bench."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

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


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from infra.app import create_app
    from infra.bootstrap import build_embedded

    settings = _settings(args)
    started = time.monotonic()
    if args.mode == "scale":
        from infra.bootstrap_scale import build_scale

        container = build_scale(settings, role=args.role)
    else:
        container = build_embedded(settings)
    if args.seed_if_empty and args.mode == "embedded" and container.read.count("accounts", {}) == 0:
        from infra.demo.seed import seed

        report = seed(container)
        print(report.summary())
    app = create_app(container, role=args.role)
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
