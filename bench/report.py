"""Results on disk: JSON (everything), a Markdown table (strategies side by side), PNG plots."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.stats import cdf_points

OPS = ("home_feed", "user_posts", "new_post")
TARGETS = (
    ("home feed p99 / bare route p99", "home_feed_p99_over_bare_p99", "<= 1.5"),
    ("freshness p99 (ms)", "freshness_p99_ms", "<= 250 (scale)"),
    ("fan-out deliveries/s / raw ZADD/s", "fanout_over_zadd", ">= 0.3"),
    ("DSB mix throughput (req/s)", "throughput_per_second", ">= 2000 (embedded)"),
    ("p99 of every operation (ms)", "p99_ms_all_operations", "<= 20 (embedded)"),
    ("Redis bytes per cached feed entry", "redis_bytes_per_feed_entry", "<= 64"),
    ("req/s per busy core of the API process (estimate)", "requests_per_server_core_second", "(capacity hint)"),
)


def strip_raw(result: dict[str, Any]) -> dict[str, Any]:
    """The JSON keeps CDF points (200 per series), not every sample."""
    out: dict[str, Any] = json.loads(json.dumps(result, default=str))
    for graph in out["graphs"]:
        bare = graph.get("bare_route")
        if bare and "_cdf_ms" in bare:
            bare["cdf_ms"] = cdf_points(bare.pop("_cdf_ms"))
        for row in graph["strategies"].values():
            if "_cdf" in row:  # a fresh result; one read back from its JSON has its points already
                row["cdf_ms"] = {name: cdf_points(values) for name, values in row.pop("_cdf").items()}
    return out


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _lat(summary: dict[str, Any]) -> str:
    return " / ".join(_fmt(summary.get(k)) for k in ("p50", "p99", "p99.9"))


def markdown(result: dict[str, Any]) -> str:
    mode, profile = result["mode"], result["profile"]["name"]
    lines = [
        f"# Feed benchmark: {mode} mode, `{profile}` profile",
        "",
        f"{result['started_at']}, {result['machine']['cores']} cores, load average at start "
        f"{result['machine']['load_average_at_start']} and end {result['machine'].get('load_average_at_end')} "
        f"(the machine is shared: a load above 2 means others competed for the cores), "
        f"run took {result['seconds']:.0f} s. "
        "Made by `glimpse bench`; bench/README.md explains every number.",
        "",
    ]
    if result.get("partial"):
        lines += [
            f"**Partial:** this run was stopped after the graphs below (of {', '.join(result['profile']['graphs'])}).",
            "",
        ]
    if not result["strategy_setting_supported"]:
        lines += [
            "**Note:** this build of Glimpse has no `feed_strategy` setting yet, so GLIMPSE_FEED_STRATEGY was "
            "ignored and the three columns ran the same (push) feed.",
            "",
        ]
    p = result["profile"]
    lines += [
        f"Load: open loop at {p['rate'][mode]:g} req/s of the DeathStarBench mix (60 % home feed, 30 % user posts, "
        f"10 % new post; 10-item pages at offsets 0-100), {p['warmup']:g} s warm-up left out, {p['duration']:g} s "
        f"measured; latency from each request's intended send time. Active users {p['active_share']:.0%}; feed "
        f"settings: {p['feed']}.",
        "",
    ]
    base = result["baselines"]
    zadd = base.get("redis_zadd") or {}
    kafka = (base.get("kafka_produce_consume") or {}).get("latency_ms", {})
    lines += ["## Baselines", ""]
    lines.append(
        f"- raw pipelined ZADD: {_fmt(zadd.get('zadd_per_second'), 0)}/s ({zadd.get('method', 'not measured')})"
    )
    rb = zadd.get("redis_benchmark") or {}
    if rb:
        lines.append(f"- redis-benchmark ZADD: {_fmt(rb.get('zadd_per_second'), 0)}/s ({rb.get('method')})")
    inserts = base.get("durable_inserts") or {}
    if inserts:
        lines.append(
            f"- raw feed-row inserts into the durable store: {_fmt(inserts.get('rows_per_second'), 0)}/s "
            f"({inserts.get('method')})"
        )
    lines.append(f"- Kafka produce -> consume: p50 {_fmt(kafka.get('p50'), 2)} ms, p99 {_fmt(kafka.get('p99'), 2)} ms")
    lines.append("")
    for graph in result["graphs"]:
        lines += graph_table(graph)
    lines += size_table(result["graphs"])
    return "\n".join(lines) + "\n"


def size_table(graphs: list[dict[str, Any]]) -> list[str]:
    """Home-feed p99 and feed entries per post by graph size (the "flat from 10K to 1M" goal)."""
    if len(graphs) < 2:
        return []
    names = [f"{g['graph']} ({g['shape']['users']:,})" for g in graphs]
    strategies = sorted({s for g in graphs for s in g["strategies"]})
    lines = [
        "## By graph size",
        "",
        "Home feed p99 (ms) / feed entries written per post:",
        "",
        "| strategy | " + " | ".join(names) + " |",
        "| --- | " + " | ".join("---" for _ in names) + " |",
    ]
    for strategy in strategies:
        cells = []
        for g in graphs:
            row = g["strategies"].get(strategy)
            if row is None:
                cells.append("-")
                continue
            p99 = row["load"]["operations"]["home_feed"]["latency_ms"]["p99"]
            cells.append(f"{_fmt(p99)} / {_fmt(row['write_amplification']['feed_entries_per_post'], 2)}")
        lines.append(f"| {strategy} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def graph_table(graph: dict[str, Any]) -> list[str]:
    shape = graph["shape"]
    strategies = list(graph["strategies"])
    bare = graph.get("bare_route") or {}
    lines = [
        f"## {graph['graph']}",
        "",
        f"{graph['description']}. {shape['users']:,} users, {shape['follows']:,} follows, followers mean "
        f"{shape['mean_followers']} / p99 {shape['p99_followers']} / max {shape['max_followers']}, "
        f"{shape['celebrities']} above the celebrity threshold ({shape['celebrity_threshold']}); "
        f"{graph['state']['posts']:,} posts before the run; {graph['active_users']:,} active users.",
        "",
        "| | " + " | ".join(strategies) + " |",
        "| --- | " + " | ".join("---" for _ in strategies) + " |",
    ]

    def row(label: str, fn: Any) -> None:
        cells = []
        for s in strategies:
            try:
                cells.append(fn(graph["strategies"][s]))
            except (KeyError, TypeError):
                cells.append("-")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    for op in OPS:
        row(f"{op} p50 / p99 / p99.9 (ms)", lambda r, op=op: _lat(r["load"]["operations"][op]["latency_ms"]))
    row("throughput (req/s) / errors", lambda r: f"{_fmt(r['load']['throughput_per_second'])} / {r['load']['errors']}")
    row(
        "freshness p50 / p99 (ms) [samples]",
        lambda r: (
            f"{_fmt(r['load']['freshness_ms']['p50'])} / {_fmt(r['load']['freshness_ms']['p99'])} "
            f"[{r['load']['freshness_samples']}]"
        ),
    )
    row(
        "freshness, server's histogram: p50 / p99 at most (ms)",
        lambda r: (
            f"{_fmt(r['load']['freshness_metric']['p50_at_most'], 0)} / "
            f"{_fmt(r['load']['freshness_metric']['p99_at_most'], 0)}"
        ),
    )
    row("fan-out deliveries/s", lambda r: _fmt(r["fanout"]["deliveries_per_second"], 0))
    row(
        "feed entries written per post (durable + cache)",
        lambda r: (
            f"{_fmt(r['write_amplification']['feed_entries_per_post'], 2)} "
            f"({_fmt(r['write_amplification']['durable_feed_entries_per_post'], 2)} + "
            f"{_fmt(r['write_amplification']['cache_entries_per_post'], 2)})"
        ),
    )
    row(
        "Redis bytes per cached feed entry",
        lambda r: _fmt((r["redis_bytes_per_feed_entry"] or {}).get("bytes_per_entry")),
    )
    row("home feed p99 / bare route p99", lambda r: _fmt(r["targets"]["home_feed_p99_over_bare_p99"], 2))
    row("fan-out / raw ZADD", lambda r: _fmt(r["targets"]["fanout_over_zadd"], 3))
    row("fan-out / raw durable row inserts", lambda r: _fmt(r["targets"].get("fanout_over_raw_inserts"), 3))
    row(
        "CPU % of a core (server / worker / generator)",
        lambda r: " / ".join(
            _fmt(r["load"]["cpu_percent_of_one_core"].get(k), 0) for k in ("server", "worker", "generator")
        ),
    )
    row(
        "storage reads, KiB per request (server / worker)",
        lambda r: " / ".join(
            _fmt((r["load"].get("disk_read_kib_per_request") or {}).get(k), 1) for k in ("server", "worker")
        ),
    )
    row(
        "generator lag p99 (ms) / GC max pause (ms)",
        lambda r: f"{_fmt(r['load']['generator_lag_ms']['p99'])} / {_fmt(r['load']['generator_gc']['max_ms'])}",
    )
    row("state build (s)", lambda r: _fmt(r["build"].get("seconds_total", r["build"].get("seconds_project")), 1))
    lines.append("")
    if graph.get("builds_in_parallel", 1) > 1:
        lines.append(
            f"The strategies' states were built {graph['builds_in_parallel']} at a time on this machine's cores, "
            "so their build times and fan-out rates are under contention (the loads ran one at a time)."
        )
        lines.append("")
    if bare:
        lines.append(
            f"Bare route ({bare.get('store')}), same generator and rate: p50 / p99 / p99.9 "
            f"{_lat(bare['latency_ms'])} ms, {_fmt(bare['throughput_per_second'])} req/s."
        )
        lines.append("")
    lines.append("Targets (goals, not assertions):")
    lines.append("")
    lines.append("| target | goal | " + " | ".join(strategies) + " |")
    lines.append("| --- | --- | " + " | ".join("---" for _ in strategies) + " |")
    for label, key, goal in TARGETS:
        cells = [_fmt(graph["strategies"][s]["targets"].get(key), 2) for s in strategies]
        lines.append(f"| {label} | {goal} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def plots(result: dict[str, Any], out_dir: Path, stem: str) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written: list[Path] = []
    graphs = result["graphs"]
    # Latency CDF of the home feed per strategy, one panel per graph.
    fig, axes = plt.subplots(1, len(graphs), figsize=(6 * len(graphs), 4), squeeze=False)
    for ax, graph in zip(axes[0], graphs, strict=True):
        for strategy, row in graph["strategies"].items():
            for op, style in (("home_feed", "-"), ("new_post", ":")):
                pts = row["cdf_ms"].get(op) or []
                if pts:
                    ax.plot([x for x, _ in pts], [y for _, y in pts], style, label=f"{strategy} {op}")
        bare = graph.get("bare_route")
        if bare and bare.get("cdf_ms"):
            ax.plot([x for x, _ in bare["cdf_ms"]], [y for _, y in bare["cdf_ms"]], "k--", label="bare route")
        ax.set_xscale("log")
        ax.set_xlabel("latency (ms, from intended send time)")
        ax.set_ylabel("fraction of requests")
        ax.set_title(f"{graph['graph']}: latency CDF")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    written.append(_save(fig, out_dir / f"{stem}_latency_cdf.png", plt))
    # Freshness CDF per strategy.
    fig, axes = plt.subplots(1, len(graphs), figsize=(6 * len(graphs), 4), squeeze=False)
    for ax, graph in zip(axes[0], graphs, strict=True):
        for strategy, row in graph["strategies"].items():
            pts = row["cdf_ms"].get("freshness") or []
            if pts:
                ax.plot([x for x, _ in pts], [y for _, y in pts], label=strategy)
        ax.set_xlabel("post -> follower's feed (ms)")
        ax.set_ylabel("fraction of posts")
        ax.set_title(f"{graph['graph']}: freshness CDF")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    written.append(_save(fig, out_dir / f"{stem}_freshness_cdf.png", plt))
    # Cost vs graph size.
    fig, axes = plt.subplots(1, 3, figsize=(16, 4))
    users = [g["shape"]["users"] for g in graphs]
    strategies = sorted({s for g in graphs for s in g["strategies"]})
    series: tuple[tuple[str, Callable[[dict[str, Any]], Any]], ...] = (
        ("home feed p99 (ms)", lambda r: r["load"]["operations"]["home_feed"]["latency_ms"]["p99"]),
        ("feed entries written per post", lambda r: r["write_amplification"]["feed_entries_per_post"]),
        ("fan-out deliveries/s", lambda r: r["fanout"]["deliveries_per_second"]),
    )
    for ax, (label, fn) in zip(axes, series, strict=True):
        for strategy in strategies:
            xs, ys = [], []
            for n, g in zip(users, graphs, strict=True):
                row = g["strategies"].get(strategy)
                value = fn(row) if row else None
                if value is not None:
                    xs.append(n)
                    ys.append(value)
            if xs:
                ax.plot(xs, ys, "o-", label=strategy)
        ax.set_xscale("log")
        ax.set_xlabel("users")
        ax.set_title(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    written.append(_save(fig, out_dir / f"{stem}_cost_vs_size.png", plt))
    return written


def _save(fig: Any, path: Path, plt: Any) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write(result: dict[str, Any], out_dir: Path, stem: str, with_plots: bool = True) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    clean = strip_raw(result)
    paths = {"json": out_dir / f"{stem}.json", "markdown": out_dir / f"{stem}.md"}
    paths["json"].write_text(json.dumps(clean, indent=1, sort_keys=False) + "\n")
    paths["markdown"].write_text(markdown(clean))
    if with_plots:
        for path in plots(clean, out_dir, stem):
            paths[path.stem] = path
    return paths


START, END = "<!-- results:start -->", "<!-- results:end -->"


def update_readme(readme: Path, results: Path) -> bool:
    """Put the latest quick-profile tables (results/feed_*_quick.md) between the README's markers."""
    if not readme.exists():
        return False
    text = readme.read_text()
    if START not in text or END not in text:
        return False
    parts = []
    for md in sorted(results.glob("feed_*_quick.md")):
        body = md.read_text().replace("\n# ", "\n### ").replace("\n## ", "\n#### ")
        body = body.replace("# Feed benchmark", "### Feed benchmark", 1)
        parts.append(f"From `results/{md.name}`:\n\n{body.strip()}\n")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n\n" + "\n".join(parts) + f"\n{END}{tail}")
    return True
