"""The bench builds strategies in forked children: results come back, failures stop the run."""

from __future__ import annotations

import os
import time

import pytest

from bench.runner import in_children

SHARED = {"rows": list(range(1000))}  # what a child reads from its parent without a copy being sent


def test_every_job_runs_in_its_own_process_and_returns_its_result() -> None:
    parent = os.getpid()
    jobs = {name: (lambda n=n: {"pid": os.getpid(), "sum": sum(SHARED["rows"]) * n}) for n, name in enumerate("abc")}
    out = in_children(jobs, parallel=2)
    assert {k: v["sum"] for k, v in out.items()} == {"a": 0, "b": 499500, "c": 999000}
    pids = {v["pid"] for v in out.values()}
    assert parent not in pids and len(pids) == 3


def test_at_most_parallel_jobs_run_at_once() -> None:
    def job() -> dict[str, float]:
        started = time.monotonic()
        time.sleep(0.3)
        return {"start": started, "end": time.monotonic()}

    spans = sorted((v["start"], v["end"]) for v in in_children({str(i): job for i in range(3)}, parallel=2).values())
    overlapping = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert overlapping == 2


def test_a_failing_job_fails_the_run_with_its_error() -> None:
    def broken() -> dict[str, int]:
        raise ValueError("no such graph")

    with pytest.raises(RuntimeError, match="broken: ValueError\\('no such graph'\\)"):
        in_children({"fine": lambda: {"x": 1}, "broken": broken}, parallel=2)


def test_a_child_that_dies_fails_the_run() -> None:
    with pytest.raises(RuntimeError, match="dead: the process died \\(exit code 3\\)"):
        in_children({"dead": lambda: os._exit(3)}, parallel=1)
