"""Where an embedded API request spends its time: per-request timings and profiles, in process.

The feed benchmark (`glimpse bench`) measures the whole system under open-loop load;
this measures one thing, the server's own CPU per request, with nothing else in the
way: the same DeathStarBench requests (bench/loadgen.py, same seed, same order) are
driven one at a time straight into the ASGI app (no sockets, no HTTP parser, no
client library), over the same state the benchmark builds (bench/state.py,
bench/build_embedded.py). Run it before and after a change, back to back, on the
same state:

    python -m bench.request_profile build --workdir /tmp/glimpse-prof        # once (~3 min at 10K users)
    python -m bench.request_profile time --workdir /tmp/glimpse-prof --reps 5
    python -m bench.request_profile profile --workdir /tmp/glimpse-prof --op home_feed [--profiler pyinstrument]
    python -m bench.request_profile serve --workdir /tmp/glimpse-prof --seconds 10   # closed loop over HTTP

`time` prints, per operation, the median over the repetitions of p50 / p90 / p99 / mean
microseconds per request, as CPU time of the serving thread (steady on a shared
machine) and as wall time, and the mix's requests per CPU-second: what one core
could serve if it did nothing else. (SQLite's WAL checkpoints run on a thread of their
own, infra/storage/sqlite_checkpoints.py: their CPU is not in these figures; `serve`
counts the whole process.) The warm-up verifies every active user's token once, as a
server that has run a while has, and `build --strategy hybrid` has every active user
read their feed before the posts are projected, as the feed benchmark does, so that the
fan-out pushes to them. `profile` runs one operation under cProfile (or
pyinstrument) and prints where the time goes. `serve` starts `glimpse serve` on a copy
of the state and loads it over loopback with a closed loop of concurrent
connections: the throughput one process really gives, HTTP and all, the server's CPU
per request, and the latencies the client saw (in a closed loop they include its own
queueing: compare runs with each other, not with the open-loop benchmark's).
Every command works on a fresh copy of the built state (new posts change it).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import pickle
import shutil
import statistics
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson

from bench import build_embedded, graphs, loadgen, processes
from bench.profiles import FeedKnobs
from bench.state import State, graph_events, plan, post_events
from bench.stats import summary

OPS = ("home_feed", "user_posts", "new_post")


def _env(data_dir: Path, strategy: str) -> dict[str, str]:
    return {
        "GLIMPSE_DATA_DIR": str(data_dir),
        "GLIMPSE_JWT_SECRET": processes.JWT_SECRET,
        "GLIMPSE_LOGIN_ATTEMPTS_PER_MINUTE": "100000",
        "GLIMPSE_WRITES_PER_MINUTE": "1000000",
    } | FeedKnobs().env(strategy)


def build(workdir: Path, graph_name: str, strategy: str, mean_posts: float) -> None:
    graph = graphs.by_name(graph_name)
    state = plan(graph, mean_posts)
    base = workdir / "state"
    t0 = time.monotonic()
    print(f"graph {graph.name}: {state.counts}")
    build_embedded.build_graph(base, graph_events(state))
    print(f"graph projected in {time.monotonic() - t0:.1f} s")
    if strategy == "hybrid":
        print(f"{touch_active(base, state, strategy)} active users read their feed")
    posts = build_embedded.build_posts(base, post_events(state), FeedKnobs().env(strategy))
    print(f"posts projected in {posts['seconds_project']} s, {posts['fanout_deliveries']} deliveries")
    (workdir / "state.pickle").write_bytes(pickle.dumps({"state": state, "strategy": strategy}))


def touch_active(data_dir: Path, state: State, strategy: str) -> int:
    """Every active user reads their feed once before the posts are projected, as in the feed
    benchmark (bench/runner.py touch_active): the hybrid fan-out pushes only to followers who
    read recently, so without this every feed read of a run would rebuild a never-pushed feed."""
    mix = make_mix(state)
    reqs = [mix.home_feed(user, 0) for user in mix.active]
    with app_for(data_dir, strategy) as app:
        asyncio.run(_timed(app, reqs))
    return len(reqs)


def load_state(workdir: Path) -> tuple[State, str]:
    saved = pickle.loads((workdir / "state.pickle").read_bytes())  # written by `build` above
    return saved["state"], saved["strategy"]


@contextmanager
def fresh_copy(workdir: Path) -> Iterator[Path]:
    data_dir = workdir / "run"
    shutil.rmtree(data_dir, ignore_errors=True)
    shutil.copytree(workdir / "state", data_dir)
    try:
        yield data_dir
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def make_mix(state: State, seed: int = 17) -> loadgen.DsbMix:
    from bench.runner import tokens_for

    active = graphs.active_sample(state.graph.users, 0.2)
    return loadgen.DsbMix(state, active, tokens_for(state, active), seed=seed)


def requests_of(mix: loadgen.DsbMix, n: int, op: str | None) -> list[loadgen.Request]:
    """The mix's next `n` requests (only those of `op`, if given)."""
    out: list[loadgen.Request] = []
    while len(out) < n:
        req = mix.next()
        if op is None or req.op == op:
            out.append(req)
    return out


class Asgi:
    """Calls an ASGI app directly, one request at a time, as uvicorn would (minus the socket)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def call(self, req: loadgen.Request) -> tuple[int, bytes]:
        body = orjson.dumps(req.body) if req.body is not None else b""
        headers = [(k.lower().encode(), v.encode()) for k, v in req.headers.items()]
        headers.append((b"host", b"bench"))
        if req.body is not None:
            headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": req.method,
            "scheme": "http",
            "path": req.path,
            "raw_path": req.path.encode(),
            "query_string": urlencode(req.params).encode(),
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
            "state": {},
        }
        sent = False
        status = 0
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)


@contextmanager
def app_for(data_dir: Path, strategy: str) -> Iterator[Any]:
    from infra.app import create_app
    from infra.bootstrap import build_embedded as build_container
    from infra.settings import Settings

    with build_embedded.environment(_env(data_dir, strategy)):
        container = build_container(Settings())
    try:
        yield create_app(container)
    finally:
        container.close()


def warm_up(app: Any, mix: loadgen.DsbMix, warmup: list[loadgen.Request]) -> None:
    """The warm-up requests, and every active user's token verified once: a server that has
    run for a while has seen each of them (a first verification, ~100 µs, happens once per
    token and process), and a few thousand requests over 2,000 users would count it for half."""
    tokens = app.state.container.tokens
    for token in mix.tokens.values():
        tokens.verify(token)
    asyncio.run(_timed(app, warmup))


async def _timed(app: Any, reqs: list[loadgen.Request]) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """(wall µs, CPU µs of this thread) per request, by operation. On a shared machine the
    CPU time is the steadier figure: time spent descheduled does not count in it."""
    asgi = Asgi(app)
    wall: dict[str, list[float]] = {op: [] for op in OPS}
    cpu: dict[str, list[float]] = {op: [] for op in OPS}
    for req in reqs:
        c0, t0 = time.thread_time_ns(), time.perf_counter_ns()
        status, body = await asgi.call(req)
        wall[req.op].append((time.perf_counter_ns() - t0) / 1000)
        cpu[req.op].append((time.thread_time_ns() - c0) / 1000)
        if status >= 400:
            raise RuntimeError(f"{req.op} {req.path} -> {status}: {body[:300]!r}")
    return wall, cpu


def time_requests(workdir: Path, n: int, warm: int, reps: int) -> dict[str, Any]:
    state, strategy = load_state(workdir)
    runs: list[dict[str, Any]] = []
    for rep in range(reps):
        mix = make_mix(state)  # the same requests every repetition
        warmup = requests_of(mix, warm, None)
        measured = requests_of(mix, n, None)
        with fresh_copy(workdir) as data_dir, app_for(data_dir, strategy) as app:
            gc.collect()
            warm_up(app, mix, warmup)
            wall, cpu = asyncio.run(_timed(app, measured))
        run: dict[str, Any] = {"wall": {op: summary(v) for op, v in wall.items()}}
        run["cpu"] = {op: summary(v) for op, v in cpu.items()}
        run["mix_req_per_cpu_s"] = n / (sum(sum(v) for v in cpu.values()) / 1e6)
        run["mix_req_per_wall_s"] = n / (sum(sum(v) for v in wall.values()) / 1e6)
        runs.append(run)
        line = "  ".join(f"{op} {run['cpu'][op]['p50']:.0f}/{run['wall'][op]['p50']:.0f}" for op in OPS)
        print(f"rep {rep + 1}: p50 µs cpu/wall: {line}  mix {run['mix_req_per_cpu_s']:.0f} req/cpu-s", flush=True)
    med: dict[str, Any] = {
        kind: {
            op: {k: statistics.median(r[kind][op][k] for r in runs) for k in ("p50", "p90", "p99", "mean")}
            for op in OPS
        }
        for kind in ("cpu", "wall")
    }
    med["mix_req_per_cpu_s"] = statistics.median(r["mix_req_per_cpu_s"] for r in runs)
    med["mix_req_per_wall_s"] = statistics.median(r["mix_req_per_wall_s"] for r in runs)
    print(f"median of {reps} repetitions, {n} requests each (after {warm} warm-up), µs per request:")
    for kind in ("cpu", "wall"):
        for op in OPS:
            m = med[kind][op]
            print(
                f"  {kind:<4} {op:<11} p50 {m['p50']:>7.0f}   p90 {m['p90']:>7.0f}   p99 {m['p99']:>7.0f}   "
                f"mean {m['mean']:>7.0f}"
            )
    print(
        f"  mix: {med['mix_req_per_cpu_s']:.0f} req per CPU-second, {med['mix_req_per_wall_s']:.0f} req/s wall "
        "(one at a time, in process, no HTTP)"
    )
    return med


def profile(workdir: Path, op: str | None, n: int, profiler: str, top: int) -> None:
    state, strategy = load_state(workdir)
    mix = make_mix(state)
    warmup = requests_of(mix, 200, None)
    reqs = requests_of(mix, n, op)
    with fresh_copy(workdir) as data_dir, app_for(data_dir, strategy) as app:
        warm_up(app, mix, warmup)
        if profiler == "pyinstrument":
            from pyinstrument import Profiler

            prof = Profiler(interval=0.0002, async_mode="disabled")
            prof.start()
            asyncio.run(_timed(app, reqs))
            prof.stop()
            print(prof.output_text(unicode=True, color=False, show_all=os.environ.get("PROFILE_SHOW_ALL") == "1"))
            return
        import cProfile
        import pstats

        cp = cProfile.Profile()
        cp.enable()
        asyncio.run(_timed(app, reqs))
        cp.disable()
        stats = pstats.Stats(cp)
        stats.sort_stats("tottime").print_stats(top)
        stats.sort_stats("cumulative").print_stats(top)


def serve(workdir: Path, seconds: float, connections: int) -> None:
    """`glimpse serve` on a copy of the state, loaded by a closed loop over loopback."""
    import aiohttp

    state, strategy = load_state(workdir)
    mix = make_mix(state)
    reqs = requests_of(mix, 200_000, None)
    with fresh_copy(workdir) as data_dir, ExitStack() as stack:
        env = processes.base_env(data_dir, FeedKnobs().env(strategy))
        base, server = processes.serve(stack, env, workdir / "serve.log")

        latencies: list[float] = []

        async def go() -> tuple[int, int, float, float]:
            done = errors = 0
            it = iter(reqs)
            connector = aiohttp.TCPConnector(limit=connections)
            async with aiohttp.ClientSession(base, connector=connector) as session:

                async def worker(until: float) -> None:
                    nonlocal done, errors
                    while time.monotonic() < until:
                        req = next(it)
                        sent = time.perf_counter()
                        async with session.request(
                            req.method, req.path, params=req.params, headers=req.headers, json=req.body
                        ) as r:
                            await r.read()
                            done += 1
                            errors += r.status >= 400
                        latencies.append(time.perf_counter() - sent)

                await asyncio.gather(*(worker(time.monotonic() + 2) for _ in range(connections)))  # warm-up
                done = errors = 0
                latencies.clear()
                cpu0, t0 = server.cpu_seconds(), time.monotonic()
                await asyncio.gather(*(worker(t0 + seconds) for _ in range(connections)))
                return done, errors, time.monotonic() - t0, server.cpu_seconds() - cpu0

        n, errors, wall, cpu = asyncio.run(go())
    lat = summary([1000 * v for v in latencies])
    print(
        f"{n / wall:.0f} req/s of the mix over HTTP ({connections} connections, {wall:.1f} s, {errors} errors); "
        f"server CPU {100 * cpu / wall:.0f} % of a core -> {n / max(cpu, 1e-9):.0f} req/s per server core-second; "
        f"latency ms p50 {lat['p50']:.1f} p99 {lat['p99']:.1f} max {lat['max']:.1f} (closed loop: the client's too)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.request_profile", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["build", "time", "profile", "serve"])
    parser.add_argument("--workdir", default="/tmp/glimpse-request-profile")
    parser.add_argument("--graph", default="synthetic-10k")
    parser.add_argument("--strategy", default="hybrid", choices=["push", "pull", "hybrid"])
    parser.add_argument("--mean-posts", type=float, default=5.0)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--op", choices=OPS, help="profile: only this operation (default: the mix)")
    parser.add_argument("--profiler", choices=["cprofile", "pyinstrument"], default="cprofile")
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args(argv)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if args.command == "build":
        build(workdir, args.graph, args.strategy, args.mean_posts)
    elif args.command == "time":
        time_requests(workdir, args.requests, args.warmup, args.reps)
    elif args.command == "profile":
        profile(workdir, args.op, args.requests, args.profiler, args.top)
    else:
        serve(workdir, args.seconds, args.connections)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
