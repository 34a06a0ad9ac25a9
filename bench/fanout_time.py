"""How fast the embedded projector fans posts out, against raw SQLite inserts of the same rows.

    python -m bench.fanout_time --graph synthetic-10k --strategy push --reps 3 --workdir /tmp/glimpse-fanout

Builds the graph's state once (bench/state.py, the projector as live; kept in
`--workdir/base` for later runs, with the plan's clock, so ids match), then for each
repetition copies it, appends the posts and times the projector's `catch_up` over them
(bench/build_embedded.py: deliveries are the feed projection's FEED puts). The raw
baseline, in the same run: that many (user, post, author) rows inserted with one
`executemany` per 1,000 into a fresh SQLite table with the read models' settings
(`baselines.sqlite_insert_rate`), the floor of one row per delivery. Prints the median
of each and their ratio, and writes JSON (`--out`). To compare two versions of the
code, run it from each checkout with its own `--workdir` (a state built by one feed
version is rebuilt by another).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

from bench import graphs
from bench.baselines import sqlite_insert_rate
from bench.build_embedded import build_graph, build_posts, copy_state
from bench.state import graph_events, plan, post_events


def _state(workdir: Path, graph: str, mean_posts: float) -> tuple[Any, Path]:
    base, saved = workdir / "base", workdir / "plan.json"
    kept = json.loads(saved.read_text()) if saved.exists() and base.exists() else None
    if kept is not None and (kept["graph"], kept["mean_posts"]) != (graph, mean_posts):
        raise SystemExit(f"{workdir} holds the state of {kept}: use another --workdir")
    now_ms = kept["now_ms"] if kept is not None else time.time_ns() // 1_000_000
    state = plan(graphs.by_name(graph), mean_posts=mean_posts, now_ms=now_ms)
    if kept is None:
        build_graph(base, graph_events(state))
        saved.write_text(json.dumps({"now_ms": now_ms, "graph": graph, "mean_posts": mean_posts}))
    return state, base


def _project_posts(state: Any, base: Path, run_dir: Path, strategy: str) -> dict[str, float]:
    shutil.rmtree(run_dir, ignore_errors=True)
    copy_state(base, run_dir)
    built = build_posts(run_dir, post_events(state), {"GLIMPSE_FEED_STRATEGY": strategy})
    return {"posts": built["posts"], "seconds": built["seconds_project"], "deliveries": built["fanout_deliveries"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--graph", default="synthetic-10k")
    parser.add_argument("--strategy", choices=["push", "hybrid", "pull"], default="push")
    parser.add_argument("--mean-posts", type=float, default=5.0)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workdir", default="/tmp/glimpse-fanout")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)

    workdir = Path(args.workdir)
    state, base = _state(workdir, args.graph, args.mean_posts)
    runs, raw_rates = [], []
    for _ in range(args.reps):
        run = _project_posts(state, base, workdir / "run", args.strategy)
        runs.append(run)
        raw_rates.append(sqlite_insert_rate(max(1000, int(run["deliveries"])))["rows_per_second"])
    seconds = statistics.median(r["seconds"] for r in runs)
    raw_rate = statistics.median(raw_rates)
    deliveries = runs[0]["deliveries"]
    result = {
        "graph": args.graph,
        "strategy": args.strategy,
        "posts": runs[0]["posts"],
        "deliveries": deliveries,
        "seconds_each": [round(r["seconds"], 2) for r in runs],
        "raw_rows_per_second_each": raw_rates,
        "deliveries_per_second": round(deliveries / seconds, 1),
        "raw_rows_per_second": raw_rate,
        "ratio": round(deliveries / seconds / raw_rate, 3),
    }
    print(f"| {args.graph}, {args.strategy} | median of {args.reps} |")
    print("| --- | --- |")
    print(f"| posts / deliveries | {result['posts']:,} / {deliveries:,} |")
    print(f"| projecting the posts (s) | {seconds:.2f} |")
    print(f"| fan-out deliveries/s | {result['deliveries_per_second']:,.0f} |")
    print(f"| raw SQLite rows/s (one row per delivery) | {result['raw_rows_per_second']:,.0f} |")
    print(f"| fan-out / raw | {result['ratio']:.3f} |")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
