"""Where a scale-stack API request spends its time: CPU and wall per request, in process.

The scale twin of bench/request_profile.py. The same DeathStarBench requests are
driven one at a time straight into the query/command app built by the scale
composition root (Cassandra read models behind the Redis caches, Kafka log), over a
state the benchmark's scale build made (events produced to Kafka, applied by a real
`glimpse worker`). It needs the servers: `source` the env file of
`python -m infra.servers.stack up`.

    python -m bench.scale_request_profile build --workdir /tmp/glimpse-sprof --graph reed98 --strategy hybrid
    python -m bench.scale_request_profile time --workdir /tmp/glimpse-sprof --reps 3
    python -m bench.scale_request_profile profile --workdir /tmp/glimpse-sprof --op home_feed
    python -m bench.scale_request_profile drop --workdir /tmp/glimpse-sprof

The state lives in the servers under the names `build` chose, so repetitions share it.
In the hybrid strategy every repetition first forgets who read their feed (and the Redis
feed caches) and has the active users read theirs again, so each repetition rebuilds the
same inactive feeds from a cold cache.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import pickle
import statistics
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from bench import build_embedded, build_scale, graphs, processes
from bench.profiles import FeedKnobs
from bench.request_profile import OPS, Asgi, _timed, make_mix, requests_of
from bench.state import State, plan
from bench.stats import summary


def _env(names: dict[str, str], strategy: str) -> dict[str, str]:
    return (
        {
            "GLIMPSE_JWT_SECRET": processes.JWT_SECRET,
            "GLIMPSE_LOGIN_ATTEMPTS_PER_MINUTE": "100000",
            "GLIMPSE_WRITES_PER_MINUTE": "1000000",
            "GLIMPSE_SHARD_ID": "1",
        }
        | FeedKnobs().env(strategy)
        | names
    )


@contextmanager
def app_for(names: dict[str, str], strategy: str) -> Iterator[Any]:
    from infra.app import create_app
    from infra.bootstrap_scale import build_scale as build_container
    from infra.settings import Settings

    with build_embedded.environment(_env(names, strategy)):
        container = build_container(Settings())
    try:
        yield create_app(container)
    finally:
        container.close()


def _touch_active(app: Any, state: State, mix: Any) -> None:
    from bench.loadgen import Request

    async def go() -> None:
        asgi = Asgi(app)
        for user in mix.active:
            req = Request("home_feed", "GET", "/v1/feed", {"limit": "10"}, mix.auth(user))
            status, body = await asgi.call(req)
            if status != 200:
                raise RuntimeError(f"touch {user}: {status} {body[:200]!r}")

    asyncio.run(go())


def _forget_activity(names: dict[str, str]) -> int:
    import redis

    settings = build_scale.settings_for(names)
    client = redis.Redis.from_url(settings.redis_url)
    try:
        doomed = list(client.scan_iter(match=f"{settings.redis_prefix}*activity*", count=1000))
        doomed += list(client.scan_iter(match=f"{settings.redis_prefix}*feed*", count=1000))
        if doomed:
            client.delete(*doomed)
        return len(doomed)
    finally:
        client.close()


def build(workdir: Path, graph_name: str, strategy: str, mean_posts: float) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    state = plan(graphs.by_name(graph_name), mean_posts)
    names = build_scale.unique_names("sp")
    (workdir / "state.pickle").write_bytes(pickle.dumps({"state": state, "strategy": strategy, "names": names}))
    env = processes.base_env(workdir, _env(names, strategy))
    builder = build_scale.ScaleBuild(build_scale.settings_for(names))
    with ExitStack() as stack, app_for(names, strategy) as app:
        stack.callback(builder.close)
        mix = make_mix(state)

        def start_worker() -> Any:
            proc = processes.glimpse(stack, ["worker", "--log-level", "warn"], env, workdir / "worker.log")
            return proc.alive

        t0 = time.monotonic()
        result = builder.run(state, start_worker, 3600, between=lambda: _touch_active(app, state, mix))
    print(f"built {graph_name}/{strategy} in {time.monotonic() - t0:.1f} s: {result}")


def _load(workdir: Path) -> tuple[State, str, dict[str, str]]:
    saved = pickle.loads((workdir / "state.pickle").read_bytes())  # written by `build` above
    return saved["state"], saved["strategy"], saved["names"]


def time_requests(workdir: Path, n: int, warm: int, reps: int) -> None:
    state, strategy, names = _load(workdir)
    runs: list[dict[str, Any]] = []
    with app_for(names, strategy) as app:
        for rep in range(reps):
            mix = make_mix(state)
            if strategy == "hybrid":
                _forget_activity(names)
                _touch_active(app, state, mix)
            warmup = requests_of(mix, warm, None)
            measured = requests_of(mix, n, None)
            gc.collect()
            asyncio.run(_timed(app, warmup))
            wall, cpu = asyncio.run(_timed(app, measured))
            run: dict[str, Any] = {"wall": {op: summary(v) for op, v in wall.items()}}
            run["cpu"] = {op: summary(v) for op, v in cpu.items()}
            run["mix_req_per_cpu_s"] = n / (sum(sum(v) for v in cpu.values()) / 1e6)
            runs.append(run)
            line = "  ".join(f"{op} {run['cpu'][op]['p50']:.0f}/{run['wall'][op]['p50']:.0f}" for op in OPS)
            print(f"rep {rep + 1}: p50 µs cpu/wall: {line}  mix {run['mix_req_per_cpu_s']:.0f} req/cpu-s", flush=True)
    print(f"median of {reps} repetitions, {n} requests each (after {warm} warm-up), µs per request:")
    for kind in ("cpu", "wall"):
        for op in OPS:
            m = {k: statistics.median(r[kind][op][k] for r in runs) for k in ("p50", "p90", "p99", "mean")}
            print(
                f"  {kind:<4} {op:<11} p50 {m['p50']:>7.0f}   p90 {m['p90']:>7.0f}   p99 {m['p99']:>7.0f}   "
                f"mean {m['mean']:>7.0f}"
            )
    mix_cpu = statistics.median(r["mix_req_per_cpu_s"] for r in runs)
    print(f"  mix: {mix_cpu:.0f} req per CPU-second of the serving thread (the driver's I/O thread not counted)")


def profile(workdir: Path, op: str | None, n: int) -> None:
    from pyinstrument import Profiler

    state, strategy, names = _load(workdir)
    with app_for(names, strategy) as app:
        mix = make_mix(state)
        if strategy == "hybrid":
            _forget_activity(names)
            _touch_active(app, state, mix)
        asyncio.run(_timed(app, requests_of(mix, 100, None)))
        reqs = requests_of(mix, n, op)
        prof = Profiler(interval=0.0002, async_mode="disabled")
        prof.start()
        asyncio.run(_timed(app, reqs))
        prof.stop()
        print(prof.output_text(unicode=True, color=False, show_all=os.environ.get("PROFILE_SHOW_ALL") == "1"))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale_request_profile")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build")
    b.add_argument("--graph", default="reed98")
    b.add_argument("--strategy", default="hybrid", choices=["push", "pull", "hybrid"])
    b.add_argument("--mean-posts", type=float, default=5.0)
    t = sub.add_parser("time")
    t.add_argument("-n", type=int, default=600)
    t.add_argument("--warm", type=int, default=100)
    t.add_argument("--reps", type=int, default=3)
    p = sub.add_parser("profile")
    p.add_argument("--op", choices=OPS)
    p.add_argument("-n", type=int, default=300)
    sub.add_parser("drop")
    for s in (b, t, p, sub.choices["drop"]):
        s.add_argument("--workdir", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "build":
        build(args.workdir, args.graph, args.strategy, args.mean_posts)
    elif args.command == "time":
        time_requests(args.workdir, args.n, args.warm, args.reps)
    elif args.command == "profile":
        profile(args.workdir, args.op, args.n)
    else:
        print(build_scale.cleanup(_load(args.workdir)[2]) or "dropped")


if __name__ == "__main__":
    main()
