"""Replay benchmark: events per second, rebuilding every read model from offset zero.

    .venv/bin/python bench/replay_bench.py [--events 1000000] [--mode embedded|scale|both]

1. A log of `--events` events with a realistic mix (new accounts, some private ones
   with follow requests, follows with a heavy-tailed follower count, uploads with their
   processing outcome, posts, likes and a few unlikes, comments with mentions, stories
   and their views, notifications read), written straight into an embedded data dir's
   SQLite log (every event is validated when the replay decodes it; a sample is decoded
   here first). Generation is seeded, so two runs replay the same log.
2. Embedded: `glimpse replay` on that data dir with nothing serving it (the same engine
   a serving process runs): every projection, from position 1, into new tables of a
   fresh read-model database, then the switch. Reported: events/s over the whole
   replay (wall clock, and per CPU second, since other work may share the machine),
   the time per phase, rows written, peak memory.
3. Scale (`--mode scale`, needs the servers of stack.env): the same events produced to
   Kafka topics under a fresh prefix, then `glimpse replay --mode scale` into new
   Cassandra tables of a fresh keyspace (infra/replay_scale.py), reported the same way.

Results: bench/results/replay_bench.json and .md (merged per mode, so the two modes
can be run separately), and a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from events.ids import EPOCH_MS, compose_id  # noqa: E402
from events.union import decode  # noqa: E402

RESULTS = ROOT / "bench" / "results"
Raw = tuple[int, str, int, str, int, bytes]  # event_id, stream, aggregate_id, type, version, data


class LogWriter:
    """Realistic histories, as dicts serialized once; each event as the union encodes it."""

    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)
        self.ms = EPOCH_MS + 400 * 86_400_000
        self.seq = 0
        self.out: list[Raw] = []
        self.users: list[int] = []
        self.private: set[int] = set()
        self.popular: list[int] = []  # one entry per follower a user has: picks followees by popularity
        self.follows: set[tuple[int, int]] = set()
        self.posts: list[tuple[int, int]] = []  # (post id, author)
        self.likes: set[tuple[int, int]] = set()
        self.stories: list[tuple[int, int]] = []
        self.media = 0

    def _id(self) -> int:
        self.seq += 1
        if self.seq > 4000:
            self.ms += 1
            self.seq = 0
        return compose_id(self.ms, 7, self.seq)

    def _at(self) -> str:
        return datetime.fromtimestamp(self.ms / 1000, UTC).isoformat().replace("+00:00", "Z")

    def emit(self, stream: str, etype: str, aggregate: int, actor: int | None, version: int = 1, **payload: Any) -> int:
        event_id = payload.pop("event_id", None) or self._id()
        body = {
            "event_id": event_id,
            "occurred_at": self._at(),
            "actor_id": actor,
            "aggregate_id": aggregate,
            "causation_id": None,
            "correlation_id": None,
            "idempotency_key": None,
            "type": etype,
            "version": version,
            **payload,
        }
        self.out.append((event_id, stream, aggregate, etype, version, orjson.dumps(body)))
        return event_id

    # -- the mix -------------------------------------------------------------------------
    def account(self) -> None:
        uid = self._id()
        self.emit(
            "accounts",
            "AccountRegistered",
            uid,
            None,
            event_id=uid,
            user_id=uid,
            username=f"user{len(self.users)}",
            password_hash="$argon2id$bench",
            display_name=f"User {len(self.users)}",
        )
        self.users.append(uid)
        self.popular.append(uid)
        if self.rnd.random() < 0.1:
            self.private.add(uid)
            self.emit("accounts", "ProfileUpdated", uid, uid, user_id=uid, private=True)
        for _ in range(self.rnd.randint(0, 4)):  # a new account follows a few known ones
            self.follow(uid)

    def follow(self, follower: int | None = None) -> None:
        a = follower if follower is not None else self.rnd.choice(self.users)
        # Half preferential (followed in proportion to followers: a heavy tail), half anyone.
        b = self.rnd.choice(self.popular if self.rnd.random() < 0.5 else self.users)
        if a == b or (a, b) in self.follows:
            return
        self.follows.add((a, b))
        edge = {"follower_id": a, "followee_id": b}
        if b in self.private:
            self.emit("graph", "FollowRequested", a, a, **edge)
            self.emit("graph", "FollowRequestApproved", a, b, **edge)
        self.emit("graph", "Followed", a, a, **edge)
        self.popular.append(b)

    def upload(self, owner: int) -> int:
        self.media += 1
        sha = f"{self.media:064x}"
        media_id = self._id()
        self.emit(
            "media",
            "MediaUploaded",
            media_id,
            owner,
            event_id=media_id,
            media_id=media_id,
            owner_id=owner,
            storage_key=f"originals/{sha[:2]}/{sha}.jpg",
            content_type="image/jpeg",
            kind="image",
            width=4032,
            height=3024,
            size_bytes=2_400_000,
            sha256=sha,
        )
        renditions = [
            {"key": f"renditions/{sha[-2:]}/{sha[::-1]}{w}.webp", "width": w, "height": w * 3 // 4, "format": "webp"}
            for w in (1080, 640, 320)
        ]
        self.emit(
            "media",
            "MediaProcessed",
            media_id,
            None,
            media_id=media_id,
            width=4032,
            height=3024,
            renditions=renditions,
            placeholder="data:image/webp;base64,UklGRg==",
            duration_ms=None,
        )
        return media_id

    def post(self) -> None:
        # Popular accounts post somewhat more than others, not in proportion to their followers.
        author = self.rnd.choice(self.popular if self.rnd.random() < 0.2 else self.users)
        media_id = self.upload(author)
        post_id = self._id()
        mentions = [self.rnd.choice(self.users)] if self.rnd.random() < 0.2 else []
        self.emit(
            "posts",
            "PostCreated",
            post_id,
            author,
            event_id=post_id,
            post_id=post_id,
            author_id=author,
            caption="golden hour at the lake" + (" @someone" if mentions else ""),
            media_ids=[media_id],
            audience="followers" if self.rnd.random() < 0.15 else "public",
            mentions=[m for m in mentions if m != author],
        )
        self.posts.append((post_id, author))

    def recent_post(self) -> tuple[int, int]:
        depth = min(int(self.rnd.expovariate(1 / 300)), len(self.posts) - 1)
        return self.posts[-1 - depth]

    def like(self) -> None:
        post, author = self.recent_post()
        user = self.rnd.choice(self.users)
        if (post, user) in self.likes:
            if self.rnd.random() < 0.3:
                self.likes.discard((post, user))
                self.emit("engagement", "Unliked", post, user, post_id=post, user_id=user, post_author_id=author)
            return
        self.likes.add((post, user))
        reaction = "like" if self.rnd.random() < 0.9 else self.rnd.choice(["love", "haha", "wow"])
        self.emit(
            "engagement",
            "Liked",
            post,
            user,
            version=2,
            post_id=post,
            user_id=user,
            post_author_id=author,
            reaction=reaction,
        )

    def comment(self) -> None:
        post, author = self.recent_post()
        user = self.rnd.choice(self.users)
        comment_id = self._id()
        mentions = [author] if self.rnd.random() < 0.1 and author != user else []
        self.emit(
            "engagement",
            "Commented",
            post,
            user,
            event_id=comment_id,
            comment_id=comment_id,
            post_id=post,
            author_id=user,
            post_author_id=author,
            text="love this" + (" @you" if mentions else ""),
            mentions=mentions,
        )

    def story(self) -> None:
        author = self.rnd.choice(self.popular if self.rnd.random() < 0.2 else self.users)
        media_id = self.upload(author)
        story_id = self._id()
        expires = datetime.fromtimestamp(self.ms / 1000 + 86_400, UTC).isoformat().replace("+00:00", "Z")
        self.emit(
            "stories",
            "StoryPosted",
            story_id,
            author,
            event_id=story_id,
            story_id=story_id,
            author_id=author,
            media_id=media_id,
            audience="followers",
            expires_at=expires,
        )
        self.stories.append((story_id, author))

    def view(self) -> None:
        story, author = self.stories[-1 - min(int(self.rnd.expovariate(1 / 50)), len(self.stories) - 1)]
        viewer = self.rnd.choice(self.users)
        if viewer != author:
            self.emit("stories", "StoryViewed", story, viewer, story_id=story, author_id=author, viewer_id=viewer)

    def read_notifications(self) -> None:
        user = self.rnd.choice(self.users)
        self.emit("notifications", "NotificationsRead", user, user, user_id=user, up_to_id=self._id())

    def generate(self, n: int) -> list[Raw]:
        for _ in range(20):
            self.account()
        steps = [
            (0.015, self.account),
            (0.13, self.follow),
            (0.07, self.post),
            (0.42, self.like),
            (0.12, self.comment),
            (0.008, self.story),
            (0.03, self.view),
            (0.007, self.read_notifications),
        ]
        weights = [w for w, _ in steps]
        actions = [a for _, a in steps]
        while len(self.out) < n:
            action = self.rnd.choices(actions, weights)[0]
            if action in (self.like, self.comment) and not self.posts:
                action = self.post
            if action == self.view and not self.stories:
                action = self.story
            action()
        return self.out[:n]


def seal(events: list[Raw], codec: Any) -> list[Raw]:
    """The events as a deployment writes them: personal fields sealed with each person's key."""
    from events.union import EVENT_CLASSES

    personal = {kind for kind, cls in EVENT_CLASSES.items() if getattr(cls, "PERSONAL", None)}
    return [(*e[:5], codec.encode(decode(e[5]))) if e[3] in personal else e for e in events]


def write_log(data_dir: Path, events: list[Raw]) -> None:
    from infra.personal_data.wiring import embedded_codec
    from infra.storage.sqlite_eventlog import SqliteEventLog

    data_dir.mkdir(parents=True, exist_ok=True)
    codec = embedded_codec(data_dir)
    events = seal(events, codec)
    log = SqliteEventLog(data_dir / "events.db", codec)
    log.close()
    import sqlite3

    conn = sqlite3.connect(data_dir / "events.db", isolation_level=None)
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO events (event_id, stream, aggregate_id, type, version, data) VALUES (?, ?, ?, ?, ?, ?)", events
    )
    conn.execute("COMMIT")
    conn.close()


def mix(events: list[Raw]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, _, _, kind, _, _ in events:
        counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _machine() -> dict[str, Any]:
    load = os.getloadavg()
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "load_average_1m_at_start": round(load[0], 2),
    }


# -- the two modes ------------------------------------------------------------------------


def bench_embedded(data_dir: Path, n: int) -> dict[str, Any]:
    from infra.data_dir_lock import try_exclusive
    from infra.replay_cli import replay_offline
    from infra.settings import Settings

    settings = Settings(data_dir=data_dir, jwt_secret="bench-secret-of-enough-length-for-hs256")
    lock = try_exclusive(data_dir)
    assert lock is not None, f"{data_dir} is in use"
    cpu, wall = time.process_time(), time.perf_counter()
    try:
        report = replay_offline(settings, [], grace_seconds=0)
    finally:
        lock.release()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {
        "events": report.events,
        "rows": report.rows,
        "rows_by_read_model": _rows_by_read_model(data_dir, settings),
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "events_per_second": round(report.events / wall),
        "events_per_cpu_second": round(report.events / cpu),
        "phases": {k: round(v, 2) for k, v in report.seconds.items()},
        "peak_rss_mb": round(_peak_rss_mb()),
        "goal_events_per_second": 50_000,
    }


def _rows_by_read_model(data_dir: Path, settings: Any) -> dict[str, int]:
    import sqlite3

    from infra.replay_embedded import replay_projections

    conn = sqlite3.connect(data_dir / "readmodels.db")
    prefixes = dict(conn.execute("SELECT projection, prefix FROM readmodel_generations"))
    out = {}
    for p in replay_projections(settings):
        prefix = prefixes.get(p.name, "rm_")
        out[p.name] = sum(int(conn.execute(f"SELECT COUNT(*) FROM {prefix}{t.name}").fetchone()[0]) for t in p.tables)
    conn.close()
    return out


def bench_scale(events: list[Raw], n: int) -> dict[str, Any]:
    from infra.replay_scale import bench_scale_replay

    return bench_scale_replay([(stream, aggregate, data) for _, stream, aggregate, _, _, data in events])


def render(results: dict[str, Any]) -> str:
    lines = [
        "# Replay benchmark",
        "",
        "Every read model rebuilt from offset zero (`bench/replay_bench.py`). Events per second are over the",
        "whole replay: reading and decoding the log, projecting, loading the rows, catching up, switching.",
        "",
        "| mode | events | rows | wall s | events/s | events/CPU s | goal | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for mode in ("embedded", "scale"):
        r = results.get(mode)
        if not r or "events" not in r:
            continue
        lines.append(
            f"| {mode} | {r['events']:,} | {r.get('rows', 0):,} | {r['wall_seconds']} | {r['events_per_second']:,} | "
            f"{r.get('events_per_cpu_second', 0):,} | {r['goal_events_per_second']:,} | {r.get('peak_rss_mb', '')} |"
        )
    for mode in ("embedded", "scale"):
        r = results.get(mode)
        if r:
            lines += ["", f"## {mode}", "", "```", json.dumps(r, indent=2), "```"]
    if "mix" in results:
        lines += ["", "## The log", "", "```", json.dumps(results["mix"], indent=2), "```"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--mode", choices=["embedded", "scale", "both"], default="embedded")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", help="keep the data dir here (default: a temporary folder)")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)

    started = time.perf_counter()
    events = LogWriter(args.seed).generate(args.events)
    generated = time.perf_counter() - started
    for _, _, _, _, _, data in events[:: max(1, len(events) // 2000)]:
        decode(data)  # a sample through the real decoder: the bench writes what the code reads
    print(f"generated {len(events):,} events in {generated:.1f}s", file=sys.stderr)

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "replay_bench.json"
    results: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    results.update({"machine": _machine(), "mix": mix(events), "generated_seconds": round(generated, 1)})

    with tempfile.TemporaryDirectory(prefix="replay-bench-", dir=args.workdir) as tmp:
        if args.mode in ("embedded", "both"):
            data_dir = Path(tmp) / "data"
            write_log(data_dir, events)
            results["embedded"] = bench_embedded(data_dir, len(events))
            print(json.dumps(results["embedded"], indent=2))
        if args.mode in ("scale", "both"):
            results["scale"] = bench_scale(events, len(events))
            print(json.dumps(results["scale"], indent=2))
    results["finished_at"] = datetime.now(UTC).isoformat()
    path.write_text(json.dumps(results, indent=2) + "\n")
    (out_dir / "replay_bench.md").write_text(render(results))
    print(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
