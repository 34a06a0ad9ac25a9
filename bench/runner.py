"""One benchmark run: for each graph, build the state once per feed strategy, load it with
the DeathStarBench mix, measure what the issue asks for, and the baselines beside it.

The server (and in the scale mode the projection worker) run as their own processes;
this process is the load generator, and its CPU is reported with theirs.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import platform
import queue
import random
import shutil
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from bench import baselines, build_embedded, build_scale, graphs, loadgen, processes
from bench.kept_states import KeptStates, fingerprint
from bench.profiles import Profile
from bench.state import State, graph_events, plan, post_events
from bench.stats import ratio

SCALE_VARS = ("GLIMPSE_KAFKA_BOOTSTRAP", "GLIMPSE_CASSANDRA_HOSTS", "GLIMPSE_REDIS_URL", "GLIMPSE_S3_ENDPOINT")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def strategy_supported() -> bool:
    from infra.settings import Settings

    return "feed_strategy" in Settings.model_fields


def tokens_for(state: State, users: list[int]) -> dict[int, str]:
    from infra.auth import TokenService

    service = TokenService(processes.JWT_SECRET, 7 * 24 * 3600)
    return {u: service.issue(state.user_ids[u]) for u in users}


def load_config(profile: Profile, mode: str) -> loadgen.LoadConfig:
    return loadgen.LoadConfig(
        rate=profile.rate[mode], warmup=profile.warmup, duration=profile.duration, connections=profile.connections
    )


FRESHNESS_METRIC = "glimpse_feed_freshness_seconds"
WORKER_EXIT_FAILED = 4  # infra/worker/app.py: a batch failed for a reason a restart may not meet again
MAX_WORKER_RESTARTS = 3


def freshness_histogram(base: str) -> dict[float, int] | None:
    """The cumulative buckets of the server's own feed-freshness histogram on /metrics, if it has one."""
    import httpx

    try:
        text = httpx.get(f"{base}/metrics", timeout=10).text
    except httpx.HTTPError:
        return None
    buckets: dict[float, int] = {}
    for line in text.splitlines():
        if line.startswith(FRESHNESS_METRIC + "_bucket{"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[float("inf") if bound == "+Inf" else float(bound)] = int(float(line.rsplit(" ", 1)[1]))
    return buckets or None


def histogram_window(before: dict[float, int] | None, after: dict[float, int] | None) -> dict[str, Any] | None:
    """Percentiles (bucket upper bounds, ms) of the observations made between two snapshots."""
    if not after:
        return None
    before = before or {}
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0) for b in bounds]
    total = counts[-1] if counts else 0
    out: dict[str, Any] = {"count": total, "method": f"server's {FRESHNESS_METRIC} histogram, measured window"}
    for name, pct in (("p50_at_most", 0.5), ("p99_at_most", 0.99)):
        value = None
        if total:
            for bound, cumulative in zip(bounds, counts, strict=True):
                if cumulative >= pct * total:
                    value = bound * 1000 if bound != float("inf") else None
                    break
        out[name] = value
    return out


def run_mix(
    base: str, mix: loadgen.DsbMix, config: loadgen.LoadConfig, procs: dict[str, processes.Proc]
) -> tuple[dict[str, Any], loadgen.Phase]:
    """Load `base` with the mix; returns (report, measured phase)."""
    window: dict[str, processes.CpuWindow] = {}

    async def go() -> tuple[loadgen.Phase, loadgen.Phase, dict[str, float]]:
        async def start_window() -> None:
            await asyncio.sleep(0.05 + config.warmup)
            window["cpu"] = processes.CpuWindow(procs)
            histograms["before"] = await asyncio.to_thread(freshness_histogram, base)

        opener = asyncio.create_task(start_window())
        result = await loadgen.run_load(base, mix.next, config, mix)
        await opener
        return result

    histograms: dict[str, dict[float, int] | None] = {}
    _, measured, generator = asyncio.run(go())
    result = loadgen.report(measured, config.duration, config.rate)
    result["freshness_metric"] = histogram_window(histograms.get("before"), freshness_histogram(base))
    result["cpu_percent_of_one_core"] = {"generator": generator["cpu_percent_of_one_core"], **window["cpu"].percent()}
    # What a request cost in storage reads: at a million users a page's rows are mostly on
    # pages no earlier request read, so this is where its extra time goes (bench/README.md).
    served = max(1, result["requests"] + measured.probe_requests)
    result["disk_read_kib_per_request"] = {k: round(v / served, 1) for k, v in window["cpu"].disk_read_kib().items()}
    result["generator_gc"] = {"pauses": generator["gc_pauses"], "max_ms": generator["gc_pause_ms_max"]}
    return result, measured


def run_bare(base: str, mix: loadgen.DsbMix, config: loadgen.LoadConfig, proc: processes.Proc) -> dict[str, Any]:
    """The bare route, at the same total rate as the mix, every request a feed page."""
    rng = random.Random(23)

    def make() -> loadgen.Request:
        user = rng.choice(mix.active)
        user_id, before = mix.feed_cursor(user, rng.randint(0, loadgen.MAX_OFFSET))
        params = {"user": str(user_id), "limit": str(loadgen.PAGE)}
        if before is not None:
            params["before"] = str(before)
        return loadgen.Request("bare_feed", "GET", "/bare/feed", params, {})

    window: dict[str, processes.CpuWindow] = {}

    async def go() -> tuple[loadgen.Phase, loadgen.Phase, dict[str, float]]:
        async def start_window() -> None:
            await asyncio.sleep(0.05 + config.warmup)
            window["cpu"] = processes.CpuWindow({"bare_route": proc})

        opener = asyncio.create_task(start_window())
        result = await loadgen.run_load(base, make, config)
        await opener
        return result

    _, measured, generator = asyncio.run(go())
    ok = [s for s in measured.samples.get("bare_feed", []) if s.ok]
    from bench.stats import summary

    return {
        "requests": len(measured.samples.get("bare_feed", [])),
        "errors": len(measured.samples.get("bare_feed", [])) - len(ok),
        "throughput_per_second": round(len(ok) / config.duration, 1),
        "latency_ms": summary([1000 * (s.done - s.due) for s in ok]),
        "cpu_percent_of_one_core": {"generator": generator["cpu_percent_of_one_core"], **window["cpu"].percent()},
        "_cdf_ms": [1000 * (s.done - s.due) for s in ok],
    }


def serve_bare(stack: ExitStack, env: dict[str, str], log_path: Path) -> tuple[str, processes.Proc]:
    import sys

    port = processes.free_port()
    args = [sys.executable, "-m", "uvicorn", "bench.bare_app:app", "--port", str(port), "--log-level", "warning"]
    proc = processes.Proc(stack, [*args, "--no-access-log"], env, log_path)
    base = f"http://127.0.0.1:{port}"
    processes.wait_ready(base, proc, 60)
    return base, proc


class Run:
    def __init__(
        self, profile: Profile, mode: str, workdir: Path, graphs_: list[str] | None = None, keep_states: bool = False
    ) -> None:
        self.profile = profile
        self.keep_states = keep_states and mode == "embedded"  # bench/kept_states.py
        self.mode = mode
        self.workdir = workdir
        self.graph_names = graphs_ or profile.graphs
        if mode == "scale":
            missing = [v for v in SCALE_VARS if not os.environ.get(v)]
            if missing:
                raise SystemExit(
                    f"scale mode needs the servers' endpoints ({', '.join(missing)} unset): "
                    '`source /work/notes/stack.env` or `eval "$(python -m infra.servers.stack up)"`'
                )

    def execute(self, after_graph: Callable[[dict[str, Any]], object] = lambda _result: None) -> dict[str, Any]:
        """Run every graph; `after_graph` gets the result so far after each one (partial results on disk)."""
        started = time.monotonic()
        result: dict[str, Any] = {
            "benchmark": "feed",
            "mode": self.mode,
            "profile": self.profile.describe(),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            "strategy_setting_supported": strategy_supported(),
            # Settings given to every process through the environment besides the bench's own.
            "environment": {
                k: v
                for k, v in sorted(os.environ.items())
                if k.startswith("GLIMPSE_") and not k.startswith(("GLIMPSE_S3_", "GLIMPSE_JWT"))
            },
            "baselines": self.baselines(),
            "graphs": [],
        }
        zadd = (result["baselines"].get("redis_zadd") or {}).get("zadd_per_second")
        inserts = (result["baselines"].get("durable_inserts") or {}).get("rows_per_second")
        for name in self.graph_names:
            result["graphs"].append(self.one_graph(name, zadd, inserts))
            result["seconds"] = round(time.monotonic() - started, 1)
            after_graph(result)
        result["seconds"] = round(time.monotonic() - started, 1)
        result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        return result

    def baselines(self) -> dict[str, Any]:
        out: dict[str, Any] = {"redis_zadd": None, "kafka_produce_consume": None, "durable_inserts": None}
        if not self.profile.baselines:
            return out
        log(f"baseline: raw feed-row inserts into {'Cassandra' if self.mode == 'scale' else 'SQLite'}")
        if self.mode == "scale":
            from infra.cassandra.session import connect
            from infra.settings import Settings

            session = connect(Settings(), request_timeout=60)
            try:
                out["durable_inserts"] = baselines.cassandra_insert_rate(session)
            finally:
                session.cluster.shutdown()
        else:
            out["durable_inserts"] = baselines.sqlite_insert_rate()
        redis_url = os.environ.get("GLIMPSE_REDIS_URL")
        if redis_url:
            log("baseline: pipelined ZADD")
            out["redis_zadd"] = baselines.zadd_rate(redis_url)
        if os.environ.get("GLIMPSE_KAFKA_BOOTSTRAP"):
            log("baseline: Kafka produce -> consume")
            out["kafka_produce_consume"] = baselines.kafka_latency(os.environ["GLIMPSE_KAFKA_BOOTSTRAP"])
        return out

    def one_graph(self, name: str, zadd: float | None, inserts: float | None) -> dict[str, Any]:
        p = self.profile
        log(f"{self.mode}: graph {name}")
        graph = graphs.by_name(name, mean_following=p.mean_following)
        t0 = time.monotonic()
        kept: KeptStates | None = None
        if self.keep_states:
            kept = KeptStates(self.workdir / f"{graph.name}-kept", fingerprint(graph, p), time.time_ns() // 1_000_000)
        state = plan(graph, p.mean_posts, now_ms=kept.now_ms if kept is not None else None)
        active = graphs.active_sample(graph.users, p.active_share)
        tokens = tokens_for(state, active)
        out: dict[str, Any] = {
            "graph": graph.name,
            "description": graph.description,
            "shape": graph.follower_stats(p.feed.celebrity_threshold),
            "state": state.counts,
            "active_users": len(active),
            "seconds_planning": round(time.monotonic() - t0, 2),
            "strategies": {},
        }
        base_dir: Path | None = None
        to_build = [s for s in p.strategies if kept is None or kept.build(s) is None]
        if self.mode == "embedded" and to_build:
            base_dir = self.workdir / f"{graph.name}-base"
            log(
                f"  projecting the graph ({state.counts['events'] - state.counts['posts']} events) once for every strategy"
            )
            # In a child, so that no connection of this process (nor its checkpoint thread) is
            # left to change the files while strategies copy them.
            out["graph_build"] = in_children(
                {"graph": partial(build_embedded.build_graph, base_dir, graph_events(state))}, 1
            )["graph"]
        builds: dict[str, dict[str, Any]] = {}
        if base_dir is not None and p.parallel_builds > 1:
            log(f"  building {len(to_build)} strategies, {p.parallel_builds} at a time")
            builds = in_children(
                {
                    s: partial(
                        self.embedded_build, graph.name, s, state, base_dir, loadgen.DsbMix(state, active, tokens), kept
                    )
                    for s in to_build
                },
                p.parallel_builds,
            )
            out["builds_in_parallel"] = p.parallel_builds
        for i, strategy in enumerate(p.strategies):
            mix = loadgen.DsbMix(state, active, tokens)
            log(f"  strategy {strategy}")
            if self.mode == "embedded":
                build = builds.get(strategy) or self.embedded_build(graph.name, strategy, state, base_dir, mix, kept)
                row = self.embedded_strategy(graph.name, strategy, state, build, mix, bare=i == 0, kept=kept)
            else:
                row = self.scale_strategy(graph.name, strategy, state, mix, bare=i == 0)
            if "bare_route" in row:
                out["bare_route"] = row.pop("bare_route")
            out["strategies"][strategy] = row
        if base_dir is not None:
            shutil.rmtree(base_dir, ignore_errors=True)
        self.ratios(out, zadd, inserts)
        return out

    def embedded_build(
        self,
        graph: str,
        strategy: str,
        state: State,
        base_dir: Path | None,
        mix: loadgen.DsbMix,
        kept: KeptStates | None = None,
    ) -> dict[str, Any]:
        """A copy of the graph's state, its active users made active, then the posts projected
        (or the kept state's build, if there is one)."""
        saved = kept.build(strategy) if kept is not None else None
        if kept is not None and saved is not None:
            log(f"    {strategy}: the kept state in {kept.data_dir(strategy)}, built {saved['seconds_project']:.0f} s")
            return saved | {"kept_state": str(kept.data_dir(strategy))}
        assert base_dir is not None
        data_dir = kept.data_dir(strategy) if kept is not None else self.workdir / f"{graph}-{strategy}"
        shutil.rmtree(data_dir, ignore_errors=True)
        shutil.copytree(base_dir, data_dir)
        feed_env = self.profile.feed.env(strategy)
        with ExitStack() as stack:
            base, server = processes.serve(
                stack, processes.base_env(data_dir, feed_env), self.workdir / f"{graph}-{strategy}-touch.log"
            )
            log(f"    {strategy}: {len(mix.active)} active users read their feed")
            touched = touch_active(base, mix)
            server.stop()
        log(f"    {strategy}: projecting {state.counts['posts']} posts")
        build = build_embedded.build_posts(data_dir, post_events(state), feed_env)
        build["active_users_read_before_posts"] = touched
        log(
            f"    {strategy}: projected in {build['seconds_project']:.1f} s "
            f"({build['fanout_deliveries_per_second']:,.0f} deliveries/s)"
        )
        if kept is not None:
            kept.save(strategy, build)
        return build

    def embedded_strategy(
        self,
        graph: str,
        strategy: str,
        state: State,
        build: dict[str, Any],
        mix: loadgen.DsbMix,
        bare: bool,
        kept: KeptStates | None = None,
    ) -> dict[str, Any]:
        p = self.profile
        data_dir = self.workdir / f"{graph}-{strategy}"
        if kept is not None:  # the run's posts must not change the kept state
            shutil.rmtree(data_dir, ignore_errors=True)
            build_embedded.copy_state(kept.data_dir(strategy), data_dir)
        feed_env = p.feed.env(strategy)
        env = processes.base_env(data_dir, feed_env)
        row: dict[str, Any] = {"build": build}
        with ExitStack() as stack:
            base, server = processes.serve(stack, env, self.workdir / f"{graph}-{strategy}-server.log")
            log(f"    load: {p.rate['embedded']:g} req/s, {p.warmup:g} s warm-up + {p.duration:g} s")
            load, measured = run_mix(base, mix, load_config(p, "embedded"), {"server": server})
            row["load"] = load
            server.stop()
            if bare:
                bare_env = env | {"BENCH_BARE_KIND": "sqlite"}
                bare_base, bare_proc = serve_bare(stack, bare_env, self.workdir / f"{graph}-bare.log")
                log("    baseline: bare route (SQLite feed scan)")
                row["bare_route"] = {"store": "sqlite feed table"} | run_bare(
                    bare_base, mix, load_config(p, "embedded"), bare_proc
                )
        row["fanout"] = {
            "deliveries_per_second": build["fanout_deliveries_per_second"],
            "deliveries": build["fanout_deliveries"],
            "method": "feed entries written by the projector while projecting the bulk posts phase",
        }
        row["write_amplification"] = self.embedded_write_amplification(data_dir, feed_env, state, measured)
        row["write_amplification"]["bulk_posts_phase"] = {
            "durable_feed_entries_per_post": round(build["fanout_deliveries"] / max(1, build["posts"]), 2),
            "durable_rows_all_feed_tables_per_post": build["durable_feed_rows_per_post"],
        }
        row["redis_bytes_per_feed_entry"] = None
        row["_cdf"] = cdfs(measured)
        shutil.rmtree(data_dir, ignore_errors=True)
        return row

    @staticmethod
    def embedded_write_amplification(
        data_dir: Path, env: dict[str, str], state: State, measured: loadgen.Phase
    ) -> dict[str, Any]:
        # Opened the way the app opens it, so the read models are found wherever they live.
        from infra.bootstrap import build_embedded as build_app
        from infra.settings import Settings

        with build_embedded.environment(env):
            container = build_app(Settings(data_dir=data_dir))
        try:
            return sampled_write_amplification(container.read, None, "", state, measured)
        finally:
            container.close()

    def scale_strategy(
        self, graph: str, strategy: str, state: State, mix: loadgen.DsbMix, bare: bool
    ) -> dict[str, Any]:
        p = self.profile
        names = build_scale.unique_names(strategy[:2])
        feed_env = p.feed.env(strategy)
        data_dir = self.workdir / f"{graph}-{strategy}"
        data_dir.mkdir(parents=True, exist_ok=True)
        env = processes.base_env(data_dir, feed_env | names)
        settings = build_scale.settings_for(names)
        row: dict[str, Any] = {"names": names["GLIMPSE_CASSANDRA_KEYSPACE"]}
        try:
            with ExitStack() as stack:
                base, server = processes.serve(
                    stack,
                    env | {"GLIMPSE_SHARD_ID": "1"},
                    data_dir / "server.log",
                    "--mode",
                    "scale",
                    ready_seconds=180,
                )
                builder = build_scale.ScaleBuild(settings)
                stack.callback(builder.close)
                worker: dict[str, processes.Proc] = {}
                restarts: list[str] = []

                def spawn_worker() -> None:
                    log_path = data_dir / f"worker{len(restarts) or ''}.log"
                    worker["proc"] = processes.glimpse(stack, ["worker", "--log-level", "warn"], env, log_path)

                def worker_alive() -> bool:
                    # As a supervisor would: a worker that stopped on a failed batch (not a poison
                    # record) is restarted and resumes from its committed positions; counted.
                    proc = worker["proc"]
                    if proc.alive():
                        return True
                    if proc.popen.returncode == WORKER_EXIT_FAILED and len(restarts) < MAX_WORKER_RESTARTS:
                        restarts.append(proc.tail(600).strip().splitlines()[-1] if proc.tail(600).strip() else "")
                        log(f"    the worker stopped on a failed batch; restart {len(restarts)}")
                        spawn_worker()
                        return True
                    return False

                def start_worker() -> Any:
                    spawn_worker()
                    return worker_alive

                touched: dict[str, Any] = {}

                def touch() -> None:
                    log(f"    {len(mix.active)} active users read their feed")
                    touched.update(touch_active(base, mix))

                log(f"    producing {state.counts['events']} events; the worker projects them")
                try:
                    build = builder.run(state, start_worker, p.build_timeout, between=touch)
                except Exception:
                    if "proc" in worker:
                        log("    worker log:\n" + worker["proc"].tail())
                    raise
                log(
                    f"    built in {build['seconds_total']:.1f} s (graph applied in {build['seconds_project_graph']:.1f} s, "
                    f"posts in {build['seconds_posts_applied']:.1f} s)"
                )
                build["active_users_read_before_posts"] = touched
                build["worker_restarts"] = restarts
                deliveries = builder.sampled_deliveries(state)
                build["fanout_deliveries_estimate"] = deliveries
                row["build"] = build
                posts_seconds = max(1e-9, build["seconds_posts_applied"])
                row["fanout"] = {
                    "deliveries_per_second": round(deliveries["entries"] / posts_seconds, 1),
                    "method": (
                        "durable feed entries after the bulk posts phase (counted per user on a sample, scaled) "
                        "over the time from producing the first post to the worker having applied the last"
                    ),
                }
                log(f"    load: {p.rate['scale']:g} req/s, {p.warmup:g} s warm-up + {p.duration:g} s")
                load, measured = run_mix(
                    base, mix, load_config(p, "scale"), {"server": server, "worker": worker["proc"]}
                )
                row["load"] = load
                log("    waiting for the worker, then sampling where the run's posts landed")
                build_scale.wait_applied(builder.positions, end_offsets(settings), 300, worker_alive)
                import redis

                cache = redis.Redis.from_url(settings.redis_url)
                try:
                    row["write_amplification"] = sampled_write_amplification(
                        builder.read, cache, settings.redis_prefix, state, measured
                    )
                finally:
                    cache.close()
                row["redis_bytes_per_feed_entry"] = redis_bytes_per_entry(settings)
                row["_cdf"] = cdfs(measured)
                if bare:
                    bare_env = env | {
                        "BENCH_BARE_KIND": "redis",
                        "BENCH_BARE_REDIS_URL": settings.redis_url,
                        "BENCH_BARE_PREFIX": settings.redis_prefix,
                    }
                    bare_base, bare_proc = serve_bare(stack, bare_env, data_dir / "bare.log")
                    log("    baseline: bare route (Redis feed reads)")
                    row["bare_route"] = {"store": "redis cached feeds"} | run_bare(
                        bare_base, mix, load_config(p, "scale"), bare_proc
                    )
        finally:
            problems = build_scale.cleanup(names)
            if problems:
                row["cleanup_problems"] = problems
        return row

    def ratios(self, out: dict[str, Any], zadd: float | None, inserts: float | None) -> None:
        bare = out.get("bare_route", {}).get("latency_ms", {})
        for row in out["strategies"].values():
            feed = row["load"]["operations"]["home_feed"]["latency_ms"]
            row["targets"] = {
                "home_feed_p99_over_bare_p99": ratio(feed.get("p99"), bare.get("p99")),
                "freshness_p99_ms": row["load"]["freshness_ms"].get("p99"),
                "fanout_over_zadd": ratio(row["fanout"]["deliveries_per_second"], zadd),
                "fanout_over_raw_inserts": ratio(row["fanout"]["deliveries_per_second"], inserts),
                "throughput_per_second": row["load"]["throughput_per_second"],
                "p99_ms_all_operations": max((o["latency_ms"]["p99"] or 0) for o in row["load"]["operations"].values()),
                "redis_bytes_per_feed_entry": (row.get("redis_bytes_per_feed_entry") or {}).get("bytes_per_entry"),
                # Throughput per fully used core of the API process: a rough ceiling for one process.
                "requests_per_server_core_second": ratio(
                    row["load"]["throughput_per_second"],
                    (row["load"]["cpu_percent_of_one_core"].get("server") or 0) / 100 or None,
                ),
            }


def in_children(jobs: dict[str, Callable[[], dict[str, Any]]], parallel: int) -> dict[str, dict[str, Any]]:
    """Each job in a forked child (which shares the parent's state without copying it),
    `parallel` at a time; their results. A child that fails or dies fails the run."""
    ctx = multiprocessing.get_context("fork")
    results: Any = ctx.Queue()
    waiting = list(jobs.items())
    running: dict[str, Any] = {}
    out: dict[str, dict[str, Any]] = {}

    def child(name: str, job: Callable[[], dict[str, Any]]) -> None:
        try:
            results.put((name, job(), None))
        except BaseException as exc:
            results.put((name, None, f"{exc!r}"))
            raise

    try:
        while waiting or running:
            while waiting and len(running) < parallel:
                name, job = waiting.pop(0)
                running[name] = ctx.Process(target=child, args=(name, job), name=f"bench-{name}")
                running[name].start()
            try:
                name, result, error = results.get(timeout=1)
            except queue.Empty:
                dead = [n for n, proc in running.items() if not proc.is_alive()]
                if dead and results.empty():
                    raise RuntimeError(f"{dead[0]}: the process died (exit code {running[dead[0]].exitcode})") from None
                continue
            running.pop(name).join()
            if error is not None:
                raise RuntimeError(f"{name}: {error}")
            out[name] = result
    finally:
        for proc in running.values():
            proc.kill()
            proc.join()
    return out


def touch_active(base: str, mix: loadgen.DsbMix, connections: int = 16) -> dict[str, Any]:
    """Every active user reads their feed once, as active users do: the hybrid fan-out
    pushes only to followers who read recently (their reads are what it asks about)."""
    import aiohttp

    async def go() -> int:
        errors = 0
        queue = list(mix.active)
        connector = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(base, connector=connector) as session:

            async def one_worker() -> None:
                nonlocal errors
                while queue:
                    user = queue.pop()
                    async with session.get("/v1/feed", params={"limit": "10"}, headers=mix.auth(user)) as r:
                        await r.read()
                        errors += r.status != 200

            await asyncio.gather(*(one_worker() for _ in range(connections)))
        return errors

    started = time.monotonic()
    errors = asyncio.run(go())
    return {"users": len(mix.active), "errors": errors, "seconds": round(time.monotonic() - started, 2)}


def sampled_write_amplification(
    read: Any, cache: Any, prefix: str, state: State, measured: loadgen.Phase, sample: int = 40
) -> dict[str, Any]:
    """Where a sample of the run's posts landed: the author's and followers' durable feed rows
    and (scale) cached feed sets holding it, per post."""
    from infra.redis_adapters.feed_cache import FeedKeys, post_range
    from projections.feed import FEED

    posts = measured.created_posts
    rng = random.Random(3)
    picked = posts if len(posts) <= sample else rng.sample(posts, sample)
    keys = FeedKeys(prefix)
    durable = cached = 0
    for post_id, author in picked:
        recipients = [state.user_ids[u] for u in (author, *state.graph.followers[author])]
        durable += sum(1 for uid in recipients if read.get(FEED.name, {"user_id": uid, "post_id": post_id}))
        if cache is not None:
            pipe = cache.pipeline(transaction=False)
            lo, hi = post_range(post_id)
            for uid in recipients:
                pipe.zrangebylex(keys.feed(uid), lo, hi, start=0, num=1)
            cached += sum(1 for found in pipe.execute() if found)
    n = max(1, len(picked))
    return {
        "feed_entries_per_post": round((durable + cached) / n, 2),
        "durable_feed_entries_per_post": round(durable / n, 2),
        "cache_entries_per_post": round(cached / n, 2),
        "posts_sampled": len(picked),
        "method": "posts made during the measured run (a sample): feed rows and cached feed sets that hold each",
    }


def cdfs(measured: loadgen.Phase) -> dict[str, list[float]]:
    return {
        "home_feed": loadgen.latencies_ms(measured, "home_feed"),
        "user_posts": loadgen.latencies_ms(measured, "user_posts"),
        "new_post": loadgen.latencies_ms(measured, "new_post"),
        "freshness": [1000 * x for x in measured.freshness],
    }


def end_offsets(settings: Any) -> dict[tuple[str, int], int]:
    """The last offset of every partition of the run's topics (what the worker must reach)."""

    async def go() -> dict[tuple[str, int], int]:
        from aiokafka import AIOKafkaConsumer
        from aiokafka.structs import TopicPartition

        from infra.kafka.topics import all_topics, bootstrap_servers

        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(settings), enable_auto_commit=False)
        await consumer.start()
        try:
            # Glimpse creates every topic with this many partitions (infra/kafka/topics.py).
            tps = [TopicPartition(t, p) for t in all_topics(settings) for p in range(settings.kafka_partitions)]
            ends = await consumer.end_offsets(tps)
        finally:
            await consumer.stop()
        return {(tp.topic, tp.partition): end - 1 for tp, end in ends.items() if end > 0}

    return asyncio.run(go())


def redis_bytes_per_entry(settings: Any, sample: int = 1000) -> dict[str, Any]:
    import redis

    from infra.redis_adapters.feed_cache import FeedKeys

    client = redis.Redis.from_url(settings.redis_url)
    memory = entries = keys = 0
    encodings: dict[str, int] = {}
    try:
        for key in client.scan_iter(match=FeedKeys(settings.redis_prefix).all_feeds(), count=1000):
            if client.type(key) != b"zset":
                continue
            card = client.zcard(key)
            if not card:
                continue
            memory += client.memory_usage(key, samples=0) or 0
            entries += card
            keys += 1
            enc = client.object("encoding", key)
            name = enc.decode() if isinstance(enc, bytes) else str(enc)
            encodings[name] = encodings.get(name, 0) + 1
            if keys >= sample:
                break
    finally:
        client.close()
    return {
        "bytes_per_entry": round(memory / entries, 1) if entries else None,
        "feeds_measured": keys,
        "entries_measured": entries,
        "encodings": encodings,
        "method": "MEMORY USAGE (whole key, SAMPLES 0) / ZCARD over the run's cached feed sets",
    }


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
