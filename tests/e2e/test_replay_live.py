"""`glimpse replay` against a running `glimpse serve`, under write load.

The server is its own process; writers keep commenting, liking and following over
HTTP from before the replay starts until after it has switched. The command finds
the data dir in use, asks the server to replay (infra/replay_embedded.py), shows its
progress and ends with the report. Then:
- no request failed while the server rebuilt and switched its read models;
- no write was lost: every comment and like the writers were told about is there;
- the live read models equal a replay of the final log from scratch, digest by digest;
- the old tables go once their grace period is over, and the server keeps serving.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.apphelpers import User
from tests.e2e.conftest import _common_env, _serve
from tests.e2e.posts_support import follow, make_post

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 60.0


def glimpse(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        timeout=300,
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    data_dir = tmp_path / "data"
    with ExitStack() as stack:
        yield _serve(stack, _common_env(data_dir), tmp_path, "replay-live"), data_dir


@dataclass
class Writer:
    """One user writing in a loop until told to stop; remembers what the server accepted."""

    user: User
    posts: list[str]
    seed: int
    comments: dict[str, list[str]] = field(default_factory=dict)  # post -> comment ids accepted
    liked: dict[str, bool] = field(default_factory=dict)  # post -> liked after the last accepted answer
    failures: list[str] = field(default_factory=list)
    writes: int = 0

    def run(self, stop: threading.Event) -> None:
        rnd = random.Random(self.seed)
        while not stop.is_set():
            post = rnd.choice(self.posts)
            try:
                if rnd.random() < 0.6:
                    r = self.user.post(f"/v1/posts/{post}/comments", json={"text": f"comment {self.writes}"})
                    if r.status_code == 201:
                        self.comments.setdefault(post, []).append(r.json()["id"])
                else:
                    liked = self.liked.get(post, False)
                    r = (self.user.delete if liked else self.user.post)(f"/v1/posts/{post}/like")
                    if r.status_code == 200:
                        self.liked[post] = r.json()["liked"]
                if r.status_code >= 300:
                    self.failures.append(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:200]}")
                self.writes += 1
            except httpx.HTTPError as exc:
                self.failures.append(repr(exc))


GAUGES = ("glimpse_projection_lag", "glimpse_event_log_head")


def _lag(base: str) -> dict[str, int]:
    lines = httpx.get(f"{base}/metrics", timeout=10).text.splitlines()
    return {ln.split()[0]: int(ln.split()[1]) for ln in lines if ln.split(" ", 1)[0] in GAUGES}


def _settled(base: str) -> int:
    """Wait until the read models have applied the whole log and nothing more arrives."""
    deadline = time.monotonic() + DEADLINE
    last = -1
    while True:
        m = _lag(base)
        if m["glimpse_projection_lag"] == 0 and m["glimpse_event_log_head"] == last:
            return last
        last = m["glimpse_event_log_head"]
        assert time.monotonic() < deadline, f"the server never settled: {m}"
        time.sleep(0.3)


def _tables(data_dir: Path) -> set[str]:
    conn = sqlite3.connect(f"file:{data_dir / 'readmodels.db'}?mode=ro", uri=True)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()


def test_replay_while_serving_under_write_load(server: tuple[str, Path], tmp_path: Path) -> None:
    base, data_dir = server
    http = httpx.Client(base_url=base, timeout=30)
    users = [User(http, f"w{i}") for i in range(4)]
    for a in users:
        for b in users:
            if a is not b:
                follow(a, b)
    posts = [make_post(u, caption=f"post of {u.username}")["id"] for u in users for _ in range(2)]
    writers = [Writer(User(httpx.Client(base_url=base, timeout=30), f"writer{i}"), posts, i) for i in range(3)]
    for w in writers[:1]:  # enough history that the rebuild takes several steps
        for i in range(150):
            r = w.user.post(f"/v1/posts/{posts[i % len(posts)]}/comments", json={"text": f"early {i}"})
            assert r.status_code == 201, r.text
            w.comments.setdefault(posts[i % len(posts)], []).append(r.json()["id"])

    stop = threading.Event()
    threads = [threading.Thread(target=w.run, args=(stop,)) for w in writers]
    for t in threads:
        t.start()
    time.sleep(0.5)
    before = sum(w.writes for w in writers)
    try:
        done = glimpse("replay", "--data-dir", str(data_dir), "--json", "--grace-seconds", "1")
    finally:
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert done.returncode == 0, done.stderr
    assert "asked it to replay" in done.stderr and "events/s" in done.stderr
    report = json.loads(done.stdout)["report"]
    assert report["helpers"] == [] and "feed" in report["projections"]
    during = sum(w.writes for w in writers) - before
    assert during > 0, "the writers did not write while the replay ran"
    assert [f for w in writers for f in w.failures] == []

    # Nothing the writers were told about is missing.
    _settled(base)
    for w in writers:
        for post, comment_ids in w.comments.items():
            listed = {c["id"] for c in w.user.get(f"/v1/posts/{post}/comments", params={"limit": 100}).json()["items"]}
            page = w.user.get(f"/v1/posts/{post}/comments", params={"limit": 100})
            cursor = page.json()["next_cursor"]
            while cursor:
                page = w.user.get(f"/v1/posts/{post}/comments", params={"limit": 100, "cursor": cursor})
                listed |= {c["id"] for c in page.json()["items"]}
                cursor = page.json()["next_cursor"]
            assert set(comment_ids) <= listed
        for post, liked in w.liked.items():
            assert w.user.get(f"/v1/posts/{post}").json()["liked"] is liked

    # The live read models equal a replay of the final log from scratch.
    live: dict[str, Any] = json.loads(glimpse("digest", "--data-dir", str(data_dir), "--json").stdout)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    for name in ("events.db", "keys.db"):  # the log, and the keys its personal fields are sealed with
        source = sqlite3.connect(f"file:{data_dir / name}?mode=ro", uri=True)
        target = sqlite3.connect(scratch / name)
        source.backup(target)  # a consistent copy while the server has it open
        source.close()
        target.close()
    replayed = json.loads(glimpse("replay", "--data-dir", str(scratch), "--json").stdout)["digests"]
    assert {n: d["digest"] for n, d in live.items()} == {n: d["digest"] for n, d in replayed.items()}

    # The old generation goes after its grace period; the server keeps serving and writing.
    deadline = time.monotonic() + 30
    while "rm_accounts" in _tables(data_dir):
        assert time.monotonic() < deadline, "the old tables were never dropped"
        time.sleep(0.5)
    assert f"rm{report['build_id']}_accounts" in _tables(data_dir)
    assert httpx.get(f"{base}/readyz", timeout=10).status_code == 200
    r = users[0].post(f"/v1/posts/{posts[-1]}/comments", json={"text": "after the switch"})
    assert r.status_code == 201, r.text
