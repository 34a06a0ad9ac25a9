"""`glimpse bench`: the feed benchmark (issue 5). See bench/README.md.

glimpse bench --quick                 # embedded mode, Reed98 + 10K synthetic
glimpse bench --quick --mode scale    # against the servers in GLIMPSE_* (stack.env)
glimpse bench --profile full --graphs reed98,synthetic-100k
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from bench.profiles import PROFILES, STRATEGIES

RESULTS = Path(__file__).resolve().parent / "results"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="the quick profile (Reed98 + 10K users, minutes)")
    parser.add_argument("--profile", choices=sorted(PROFILES), help="tiny | quick | full (default quick)")
    parser.add_argument("--mode", choices=["embedded", "scale"], default="embedded")
    parser.add_argument("--graphs", help="comma-separated: reed98, synthetic-10k, synthetic-100k, synthetic-1m, ...")
    parser.add_argument("--strategies", help=f"comma-separated subset of {','.join(STRATEGIES)}")
    parser.add_argument("--rate", type=float, help="target requests per second of the mix")
    parser.add_argument("--duration", type=float, help="measured seconds per strategy")
    parser.add_argument("--warmup", type=float, help="warm-up seconds per strategy (not reported)")
    parser.add_argument("--active-share", type=float, help="share of users who send requests")
    parser.add_argument("--mean-posts", type=float, help="posts per user before the run")
    parser.add_argument("--celebrity-threshold", type=int, help="GLIMPSE_FEED_CELEBRITY_THRESHOLD")
    parser.add_argument(
        "--parallel-builds", type=int, help="embedded: strategies built at once, each in its own process"
    )
    parser.add_argument("--no-baselines", action="store_true", help="skip the ZADD and Kafka baselines")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--out", help=f"results folder (default {RESULTS})")
    parser.add_argument("--workdir", help="where data dirs and process logs go (default: a temporary folder)")
    parser.add_argument(
        "--keep-states",
        action="store_true",
        help="embedded: keep each strategy's built state in --workdir and reuse it in later runs (bench/kept_states.py)",
    )
    parser.add_argument("--render", metavar="JSON", help="only rewrite the Markdown and plots of a results JSON")
    parser.add_argument(
        "--nice",
        type=int,
        default=-5,
        help="niceness increment for the bench and the processes it starts (default -5 when allowed; 0: none)",
    )


def render(path: Path, with_plots: bool) -> int:
    import json

    from bench.report import update_readme, write

    result = json.loads(path.read_text())
    paths = write(result, path.parent, path.stem, with_plots=with_plots)
    print(paths["markdown"].read_text())
    if path.parent.resolve() == RESULTS:
        update_readme(RESULTS.parent / "README.md", RESULTS)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.render:
        return render(Path(args.render), with_plots=not args.no_plots)
    from bench.processes import set_priority
    from bench.report import update_readme, write
    from bench.runner import Run, log

    # Stop cleanly (servers stopped, scale names dropped) on SIGTERM and Ctrl-C alike.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    niceness = set_priority(args.nice)

    name = args.profile or "quick"
    profile = dataclasses.replace(PROFILES[name])
    profile.rate = dict(profile.rate)
    if args.graphs:
        profile.graphs = [g.strip() for g in args.graphs.split(",") if g.strip()]
    if args.strategies:
        chosen = tuple(s.strip() for s in args.strategies.split(",") if s.strip())
        unknown = set(chosen) - set(STRATEGIES)
        if unknown:
            raise SystemExit(f"unknown strategies {sorted(unknown)}; use {', '.join(STRATEGIES)}")
        profile.strategies = chosen
    if args.rate:
        profile.rate[args.mode] = args.rate
    for attr in ("duration", "warmup", "active_share", "mean_posts", "parallel_builds"):
        value = getattr(args, attr)
        if value is not None:
            setattr(profile, attr, value)
    if args.celebrity_threshold is not None:
        profile.feed = dataclasses.replace(profile.feed, celebrity_threshold=args.celebrity_threshold)
    if args.no_baselines:
        profile.baselines = False
    out = Path(args.out) if args.out else RESULTS
    keep = args.workdir is not None
    if args.keep_states and not keep:
        raise SystemExit("--keep-states needs --workdir: the states are kept there")
    workdir = Path(args.workdir) if keep else Path(tempfile.mkdtemp(prefix="glimpse-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        stem = f"feed_{args.mode}_{profile.name}"

        def partial(so_far: dict[str, object]) -> None:
            write(so_far | {"partial": True}, out, stem, with_plots=False)

        result = Run(profile, args.mode, workdir, keep_states=args.keep_states).execute(after_graph=partial)
        result["machine"]["niceness"] = niceness
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    paths = write(result, out, stem, with_plots=not args.no_plots)
    print(paths["markdown"].read_text())
    if out.resolve() == RESULTS and update_readme(RESULTS.parent / "README.md", RESULTS):
        log("updated the results in bench/README.md")
    for kind, path in paths.items():
        log(f"wrote {kind}: {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.profile = args.profile or "quick"
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
