"""The feed benchmark at a tiny size, so the harness cannot rot (the real runs are `glimpse bench`).

The whole harness runs as `glimpse bench` would (its own server processes, the
open-loop generator, all three strategies) on a 150-user graph for a few seconds,
and the JSON must carry every field the README documents. A second test checks
that the generator is open-loop: a server slower than the arrival rate must show
up as growing latency, not as a slower generator.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import loadgen  # noqa: E402 - bench/ is not an installed package

STRATEGIES = ("push", "pull", "hybrid")
OPS = ("home_feed", "user_posts", "new_post")
LATENCY = ("count", "p50", "p99", "p99.9")


def _has(tree: dict[str, Any], *path: str) -> Any:
    node: Any = tree
    for key in path:
        assert isinstance(node, dict) and key in node, f"missing {'.'.join(path)} (at {key!r})"
        node = node[key]
    return node


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("bench-results")
    args = [sys.executable, "-m", "infra.cli", "bench", "--profile", "tiny", "--graphs", "synthetic-150"]
    args += ["--duration", "2", "--warmup", "0.5", "--no-baselines", "--no-plots", "--out", str(out)]
    args += ["--workdir", str(out / "work")]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads((out / "feed_embedded_tiny.json").read_text()), out


def test_tiny_run_reports_every_field(smoke: tuple[dict[str, Any], Path]) -> None:
    result, out = smoke
    assert result["mode"] == "embedded"
    for key in ("profile", "machine", "started_at", "seconds", "strategy_setting_supported"):
        _has(result, key)
    _has(result, "baselines", "redis_zadd")
    _has(result, "baselines", "kafka_produce_consume")
    _has(result, "baselines", "durable_inserts")
    (graph,) = result["graphs"]
    for key in ("users", "follows", "max_followers", "celebrities"):
        _has(graph, "shape", key)
    assert graph["state"]["posts"] > 0 and graph["active_users"] > 0
    _has(graph, "graph_build", "seconds_project")
    for key in LATENCY:
        assert _has(graph, "bare_route", "latency_ms", key) is not None
    assert graph["bare_route"]["errors"] == 0
    assert set(graph["strategies"]) == set(STRATEGIES)
    for strategy, row in graph["strategies"].items():
        load = row["load"]
        assert load["errors"] == 0, (strategy, load["operations"])
        assert load["throughput_per_second"] > 0
        for op in OPS:
            assert load["operations"][op]["requests"] > 0, (strategy, op)
            for key in LATENCY:
                assert _has(load, "operations", op, "latency_ms", key) is not None, (strategy, op, key)
            _has(load, "operations", op, "throughput_per_second")
        assert load["freshness_samples"] > 0, strategy
        for key in ("p50", "p99"):
            assert _has(load, "freshness_ms", key) is not None
        for key in ("generator", "server"):
            assert _has(load, "cpu_percent_of_one_core", key) is not None
        assert _has(load, "disk_read_kib_per_request", "server") >= 0
        _has(load, "generator_lag_ms", "p99")
        assert _has(row, "fanout", "deliveries_per_second") is not None
        for key in ("feed_entries_per_post", "durable_feed_entries_per_post", "cache_entries_per_post"):
            assert _has(row, "write_amplification", key) is not None
        assert "redis_bytes_per_feed_entry" in row
        for key in ("home_feed_p99_over_bare_p99", "freshness_p99_ms", "fanout_over_zadd", "throughput_per_second"):
            _has(row, "targets", key)
        assert row["targets"]["home_feed_p99_over_bare_p99"] is not None
        assert row["cdf_ms"]["home_feed"], strategy
    table = (out / "feed_embedded_tiny.md").read_text()
    assert "| | push | pull | hybrid |" in table


def test_the_generator_is_open_loop() -> None:
    """One connection to a 50 ms handler at 40 requests/s: requests queue, and the queueing is measured."""

    async def slow(_request: web.Request) -> web.Response:
        await asyncio.sleep(0.05)
        return web.json_response({"items": []})

    async def scenario() -> tuple[loadgen.Phase, dict[str, float]]:
        app = web.Application()
        app.router.add_get("/slow", slow)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            config = loadgen.LoadConfig(rate=40, warmup=0.0, duration=1.0, connections=1)
            _, measured, generator = await loadgen.run_load(
                f"http://127.0.0.1:{port}", lambda: loadgen.Request("slow", "GET", "/slow", {}, {}), config
            )
        finally:
            await runner.cleanup()
        return measured, generator

    measured, generator = asyncio.run(scenario())
    report = loadgen.report(measured, 1.0, 40)
    slow_op = report["operations"]["slow"]
    assert generator["scheduled"] == 40
    assert slow_op["requests"] == 40 and slow_op["errors"] == 0
    # Served one at a time, 40 x 50 ms take 2 s: the last request, due at 0.975 s, ends ~1 s late.
    # A closed loop would have reported ~50 ms for every request.
    assert slow_op["latency_ms"]["max"] > 800
    assert slow_op["latency_ms"]["p50"] > 300  # the queue shows in the middle of the distribution too
    assert report["generator_lag_ms"]["p99"] < 100  # while the generator handed out every request on time


def test_the_fanout_timer_measures_a_tiny_graph_and_keeps_its_state(tmp_path: Path) -> None:
    from bench import fanout_time

    out = tmp_path / "fanout.json"
    args = ["--graph", "synthetic-150", "--strategy", "push", "--reps", "1", "--workdir", str(tmp_path / "w")]
    assert fanout_time.main([*args, "--out", str(out)]) == 0
    first = json.loads(out.read_text())
    assert first["posts"] > 0 and first["deliveries"] > first["posts"]  # the author's own feed, then followers'
    assert 0 < first["ratio"] < 1
    assert fanout_time.main([*args, "--out", str(out)]) == 0  # the kept state: the same posts land the same way
    assert json.loads(out.read_text())["deliveries"] == first["deliveries"]
    with pytest.raises(SystemExit, match="holds the state"):
        fanout_time.main([*args[:1], "synthetic-200", *args[2:]])


def test_kept_states_are_reused_unchanged_and_rebuilt_when_settings_change(tmp_path: Path) -> None:
    def bench(*extra: str) -> dict[str, Any]:
        args = [sys.executable, "-m", "infra.cli", "bench", "--profile", "tiny", "--graphs", "synthetic-150"]
        args += ["--strategies", "hybrid", "--duration", "1", "--warmup", "0.2", "--no-baselines", "--no-plots"]
        args += ["--out", str(tmp_path), "--workdir", str(tmp_path / "work"), "--keep-states", *extra]
        done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        (graph,) = json.loads((tmp_path / "feed_embedded_tiny.json").read_text())["graphs"]
        return graph

    def kept_events() -> int:
        import sqlite3

        conn = sqlite3.connect(tmp_path / "work" / "synthetic-150-kept" / "hybrid" / "events.db")
        try:
            return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
        finally:
            conn.close()

    first = bench()
    built = first["strategies"]["hybrid"]["build"]
    assert "kept_state" not in built and "graph_build" in first
    events = kept_events()
    second = bench()
    reused = second["strategies"]["hybrid"]["build"]
    assert reused["kept_state"].endswith("hybrid") and "graph_build" not in second  # nothing was built
    assert reused["fanout_deliveries"] == built["fanout_deliveries"]  # the build's own figures
    assert second["state"] == first["state"]  # the same plan: the kept events are the run's events
    assert second["strategies"]["hybrid"]["load"]["errors"] == 0
    assert kept_events() == events  # the run's new posts went into a copy
    third = bench("--celebrity-threshold", "3")
    assert "kept_state" not in third["strategies"]["hybrid"]["build"]  # other settings: built again
