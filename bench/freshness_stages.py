"""Where the scale stack's post -> feed freshness goes, stage by stage.

    source /work/notes/stack.env
    python -m bench.freshness_stages --users 300 --rates 10,60 --duration 20

Starts `glimpse worker` (with GLIMPSE_WORKER_TRACE: each batch's step times) and
`glimpse serve --mode scale` on names of its own (dropped at the end), builds a
synthetic graph through the worker, has every active user read their feed once (the
hybrid fan-out pushes to recent readers, and the read warms their Redis feed), then
sends the DeathStarBench mix open loop at each rate. For each new post's 201 it
watches one active follower's cached feed in Redis (a ZRANGE BYLEX every `--poll`
seconds: what a cache-hit feed page reads) and joins that with the worker's trace:

  accept     client send -> the Kafka record's timestamp (API until the producer took it)
  kafka      record timestamp -> the worker's agent got it (fetch + Faust take buffering)
  hold       agent -> released by the merger to the applying task (ordering, queueing behind a batch)
  positions  release -> the applier has read the saved positions (thread hop + one Cassandra read)
  project    -> projections done over the batch overlay (reads in rounds)
  journal    -> the flush journal holds the batch's changes (infra/worker/changes.py)
  flush      -> the batch's writes are in Cassandra
  mirror     -> listeners ran (Redis feed mirror, counters, notifications)
  readable   mirror done -> the poller saw the entry (at most one poll late)
and the totals: kafka timestamp -> readable, 201 -> readable (what `glimpse bench`
calls freshness), and the batch size each post rode in.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from contextlib import ExitStack
from pathlib import Path
from tempfile import mkdtemp
from typing import Any

import orjson

from bench import build_scale, graphs, processes
from bench.loadgen import DsbMix
from bench.runner import tokens_for, touch_active
from bench.state import plan
from bench.stats import percentile

STAGES = ("accept", "kafka", "hold", "positions", "project", "journal", "flush", "mirror", "readable")


def _summary(values: list[float]) -> dict[str, float]:
    xs = sorted(values)
    if not xs:
        return {}
    return {"p50": round(percentile(xs, 50), 1), "p99": round(percentile(xs, 99), 1), "max": round(xs[-1], 1)}


async def _load(
    base: str, mix: DsbMix, rate: float, warmup: float, duration: float, poll: float, redis_url: str, prefix: str
) -> dict[int, dict[str, float]]:
    """The mix at `rate`; for each measured new post: send, 201 and readable (wall clock)."""
    import aiohttp
    import redis.asyncio as aredis

    from infra.redis_adapters.feed_cache import FeedKeys, post_range

    keys = FeedKeys(prefix)
    client = aredis.Redis.from_url(redis_url)
    posts: dict[int, dict[str, float]] = {}
    watched: dict[int, str] = {}  # post id -> the follower's feed key
    stop = asyncio.Event()

    async def watch() -> None:
        while not stop.is_set() or watched:
            if watched:
                items = list(watched.items())
                pipe = client.pipeline(transaction=False)
                for post_id, key in items:
                    low, high = post_range(post_id)
                    pipe.zrangebylex(key, low, high, 0, 1)
                found = await pipe.execute()
                now = time.time()
                for (post_id, _), hit in zip(items, found, strict=True):
                    if hit:
                        posts[post_id]["readable"] = now
                        del watched[post_id]
                    elif now - posts[post_id]["accepted"] > 30:
                        del watched[post_id]
            await asyncio.sleep(poll)

    connector = aiohttp.TCPConnector(limit=64)
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()
    latencies: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    async with aiohttp.ClientSession(base, connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def fire(due: float, measured: bool) -> None:
            req = mix.next()
            sent = time.time()
            try:
                async with session.request(
                    req.method, req.path, params=req.params, headers=req.headers, json=req.body
                ) as r:
                    raw = await r.read()
                    ok = r.status < 400
            except (TimeoutError, aiohttp.ClientError):
                ok, raw = False, b""
            done = time.time()
            if measured and not ok:
                errors[req.op] = errors.get(req.op, 0) + 1
            if measured and ok:
                latencies.setdefault(req.op, []).append(1000 * (loop.time() - due))
            if not (ok and measured and req.op == "new_post" and req.author is not None):
                return
            post_id = int(orjson.loads(raw)["id"])
            follower = mix.probe_follower(req.author)
            posts[post_id] = {"sent": sent, "accepted": done}
            if follower is not None and await client.exists(keys.feed(mix.state.user_ids[follower])):
                watched[post_id] = keys.feed(mix.state.user_ids[follower])

        watcher = asyncio.create_task(watch())
        start = loop.time() + 0.05
        i = 0
        while True:
            due = start + i / rate
            if due >= start + warmup + duration:
                break
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            task = asyncio.create_task(fire(due, due >= start + warmup))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
        if tasks:
            await asyncio.wait(tasks)
        stop.set()
        await watcher
    await client.aclose()
    _LAT.clear()
    _LAT.update({op: _summary(xs) | {"n": len(xs), "errors": errors.get(op, 0)} for op, xs in latencies.items()})
    _LAT.update({op: {"n": 0, "errors": n} for op, n in errors.items() if op not in latencies})
    return posts


_LAT: dict[str, Any] = {}


def _trace(path: Path) -> dict[int, dict[str, Any]]:
    """Post id -> the worker's times for the batch that applied its PostCreated."""
    out: dict[int, dict[str, Any]] = {}
    for line in path.read_bytes().splitlines():
        batch = orjson.loads(line)
        for kind, aggregate, ts_ms, received in batch["records"]:
            if kind == "PostCreated" and aggregate is not None:
                out[int(aggregate)] = {
                    "kafka_ts": ts_ms,  # Faust gives the record timestamp in seconds
                    "received": received,
                    "released": batch["released"],
                    "marks": batch["marks"],
                    "batch": len(batch["records"]),
                }
    return out


def breakdown(posts: dict[int, dict[str, float]], trace: dict[int, dict[str, Any]]) -> dict[str, Any]:
    stages: dict[str, list[float]] = {s: [] for s in STAGES}
    totals: dict[str, list[float]] = {"kafka_to_readable": [], "accepted_to_readable": [], "sent_to_readable": []}
    sizes: list[float] = []
    for post_id, p in posts.items():
        t = trace.get(post_id)
        if post_id < 0 or t is None or "readable" not in p:
            continue
        m = t["marks"]
        points = [
            p["sent"],
            t["kafka_ts"],
            t["received"],
            t["released"],
            m.get("positions"),
            m.get("projected"),
            m.get("journaled", m.get("projected")),
            m.get("flushed"),
            m.get("listened"),
            p["readable"],
        ]
        if any(x is None for x in points):
            continue
        for name, a, b in zip(STAGES, points, points[1:], strict=False):
            stages[name].append(1000 * (b - a))
        totals["kafka_to_readable"].append(1000 * (p["readable"] - t["kafka_ts"]))
        totals["accepted_to_readable"].append(1000 * (p["readable"] - p["accepted"]))
        totals["sent_to_readable"].append(1000 * (p["readable"] - p["sent"]))
        sizes.append(t["batch"])
    watched = sum(1 for k, p in posts.items() if k >= 0)
    return {
        "posts": watched,
        "joined": len(sizes),
        "stages_ms": {k: _summary(v) for k, v in stages.items()},
        "totals_ms": {k: _summary(v) for k, v in totals.items()},
        "batch_records": _summary(sizes),
        "latency_ms": dict(_LAT),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=300)
    ap.add_argument("--mean-posts", type=float, default=2.0)
    ap.add_argument("--rates", default="10,60", help="comma-separated DSB mix rates (req/s); 10 %% are new posts")
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--poll", type=float, default=0.002, help="seconds between readability checks")
    ap.add_argument("--strategy", default="hybrid", choices=["push", "pull", "hybrid"])
    ap.add_argument("--active-share", type=float, default=0.2)
    ap.add_argument("--serve-args", default="", help="extra `glimpse serve` arguments, e.g. '--workers 2'")
    ap.add_argument("--worker-env", default="", help="extra worker env, e.g. GLIMPSE_WORKER_BATCH_SECONDS=0.01")
    ap.add_argument("--out", default="", help="write the JSON here")
    args = ap.parse_args(argv)

    workdir = Path(mkdtemp(prefix="glimpse-fresh-"))
    names = build_scale.unique_names("fresh")
    settings = build_scale.settings_for(names)
    trace_path = workdir / "worker-trace.jsonl"
    env = processes.base_env(workdir / "data", names | {"GLIMPSE_FEED_STRATEGY": args.strategy})
    worker_env = env | {"GLIMPSE_WORKER_TRACE": str(trace_path)}
    for pair in filter(None, args.worker_env.split(",")):
        k, _, v = pair.partition("=")
        worker_env[k] = v
    graph = graphs.by_name(f"synthetic-{args.users}")
    state = plan(graph, args.mean_posts)
    active = graphs.active_sample(graph.users, args.active_share)
    mix = DsbMix(state, active, tokens_for(state, active), seed=17)
    results: dict[str, Any] = {
        "users": args.users,
        "strategy": args.strategy,
        "serve_args": args.serve_args,
        "worker_env": args.worker_env,
        "rates": {},
    }
    try:
        with ExitStack() as stack:
            build = build_scale.ScaleBuild(settings)
            stack.callback(build.close)
            worker = processes.glimpse(stack, ["worker", "--log-level", "warn"], worker_env, workdir / "worker.log")
            print(f"workdir {workdir}; names {names['GLIMPSE_WORKER_GROUP']}", flush=True)
            base, server = processes.serve(
                stack, env, workdir / "server.log", "--mode", "scale", *args.serve_args.split()
            )
            t0 = time.monotonic()
            build.run(state, lambda: worker.alive, timeout=900, between=lambda: touch_active(base, mix))
            print(f"state built in {time.monotonic() - t0:.1f} s ({state.counts['events']} events)", flush=True)
            touch_active(base, mix)  # warm every active feed again (the posts phase may have dropped some)
            for rate in [float(r) for r in args.rates.split(",")]:
                trace_path.write_bytes(b"")
                mix.rng = random.Random(int(rate))
                posts = asyncio.run(
                    _load(
                        base,
                        mix,
                        rate,
                        args.warmup,
                        args.duration,
                        args.poll,
                        settings.redis_url,
                        settings.redis_prefix,
                    )
                )
                time.sleep(1.0)
                row = breakdown(posts, _trace(trace_path))
                results["rates"][str(rate)] = row
                print(f"\n== rate {rate:g} req/s: {row['joined']}/{row['posts']} posts joined", flush=True)
                for name, s in {**row["stages_ms"], **row["totals_ms"]}.items():
                    print(
                        f"  {name:22s} p50 {s.get('p50', '-'):>8} p99 {s.get('p99', '-'):>8}  max {s.get('max', '-')}"
                    )
                print(f"  batch records {row['batch_records']}")
                for op, s in row["latency_ms"].items():
                    print(f"  {op:12s} latency p50 {s.get('p50')} p99 {s.get('p99')} n {s['n']} errors {s['errors']}")
            if not server.alive() or not worker.alive():
                print("a process died: see", workdir)
    finally:
        problems = build_scale.cleanup(names)
        if problems:
            print("cleanup:", problems)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
