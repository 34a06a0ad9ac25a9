"""The hybrid home feed over the real scale stack: an API process (`glimpse serve --mode
scale`) and a projection worker (`glimpse worker`) as subprocesses, on Kafka, Cassandra,
Redis and S3.

A celebrity's post is never fanned out yet every follower reads it; a follower whose
last read is older than the active window is skipped by the worker, marked in Redis,
and rebuilt by the API on their next read (written back to Cassandra and the Redis
cache); afterwards they are pushed to again. Freshness observed by the worker shows on
the API's /metrics.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import redis

from infra.feed_activity import RedisActivityStore, bucket_of
from infra.redis_adapters.feed_cache import FeedKeys, decode_entry
from infra.settings import Settings
from projections.feed import FEED, FEED_BY_POST, FEED_PULLED_POSTS
from projections.registry import all_tables
from tests.e2e.conftest import _serve, _spawn
from tests.e2e.test_live_story import Person, Tokens, _jpeg
from tests.integration.kafka_env import delete_topics, env_of, isolated, keyspace, unique
from tests.integration.redis_env import delete_prefixed, redis_url, unique_prefix

pytestmark = pytest.mark.integration

pytest.importorskip("faust")
pytest.importorskip("cassandra")

from infra.cassandra.readmodel import CassandraReadModel  # noqa: E402
from infra.media.s3_store import S3MediaStore  # noqa: E402


class Stack:
    def __init__(self, settings: Settings, base: str, read: CassandraReadModel, r: redis.Redis) -> None:
        self.settings = settings
        self.base = base
        self.read = read
        self.redis = r
        self.tokens = Tokens()

    def person(self, name: str) -> Person:
        return Person(self.base, f"{name}{unique('')[:6]}", self.tokens)

    def durable(self, user: Person) -> list[str]:
        return [str(r["post_id"]) for r in self.read.scan(FEED.name, {"user_id": int(user.id)}, desc=True)]

    def cached(self, user: Person) -> list[str] | None:
        key = FeedKeys(self.settings.redis_prefix).feed(int(user.id))
        if not self.redis.exists(key):
            return None
        members = self.redis.zrange(key, b"+", b"-", desc=True, bylex=True)
        return [str(decode_entry(m)[0]) for m in members if m]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    settings = isolated(
        redis_url=redis_url(),
        redis_prefix=unique_prefix(),
        s3_bucket=unique("feed-"),
        feed_strategy="hybrid",
        feed_celebrity_threshold=1,
        feed_active_window_seconds=3600,
    )
    env = env_of(settings) | {
        "GLIMPSE_DATA_DIR": str(tmp_path / "data"),
        "GLIMPSE_JWT_SECRET": "feed-scale-secret-of-enough-length-for-hs256",
        "GLIMPSE_LOGIN_ATTEMPTS_PER_MINUTE": "1000",
        "GLIMPSE_WRITES_PER_MINUTE": "100000",
        "GLIMPSE_CONSISTENCY_WAIT_SECONDS": "30",
        "GLIMPSE_MODE": "scale",
    }
    client = redis.Redis.from_url(settings.redis_url)
    with keyspace(settings, read_models=True) as session, ExitStack() as processes:
        try:
            base = _serve(processes, env | {"GLIMPSE_SHARD_ID": "5"}, tmp_path, "feed-api", "--mode", "scale")
            worker_log = tmp_path / "feed-worker.log"
            worker = _spawn(processes, ["worker", "--log-level", "warn"], env, worker_log)
            yield Stack(settings, base, CassandraReadModel(session, settings.cassandra_keyspace, all_tables()), client)
            assert worker.poll() is None, f"the worker stopped:\n{worker_log.read_text()[-4000:]}"
        finally:
            processes.close()
            delete_topics(settings)
            delete_prefixed(client, settings.redis_prefix)
            client.close()
            with contextlib.suppress(Exception):  # never created if the API did not start
                S3MediaStore(settings).delete_bucket()


def post(person: Person, color: tuple[int, int, int]) -> str:
    media = person.ok("POST", "/v1/media", 202, files={"file": ("p.jpg", _jpeg(color), "image/jpeg")})
    body = {"caption": "", "media_ids": [media["id"]], "audience": "followers"}
    return str(person.ok("POST", "/v1/posts", 201, json=body)["id"])


def feed(person: Person, limit: int = 20) -> list[str]:
    out: list[str] = []
    params: dict[str, Any] = {"limit": limit}
    while True:
        page = person.ok("GET", "/v1/feed", params=params)
        out += [p["id"] for p in page["items"]]
        if not page["next_cursor"]:
            return out
        params["cursor"] = page["next_cursor"]


def test_celebrity_posts_and_an_inactive_followers_rebuild(stack: Stack) -> None:
    star, bob, carol, dave = (stack.person(n) for n in ("star", "bob", "carol", "dave"))
    for follower, followee in ((bob, star), (carol, star), (bob, dave)):
        assert follower.ok("POST", f"/v1/users/{followee.username}/follow") == {"state": "following"}
    for p in (star, bob, carol, dave):
        assert feed(p) == []  # everyone reads once: active, and nothing to rebuild
    activity = RedisActivityStore(stack.redis, stack.settings.redis_prefix)
    activity.record_read(int(bob.id), int(time.time() * 1000) - 2 * 3600 * 1000)  # bob stopped reading

    starred = post(star, (250, 200, 0))  # two followers > threshold 1: a celebrity, not pushed
    pushed = post(dave, (0, 90, 250))  # one follower: pushed, but bob is inactive
    dave.ok("GET", "/v1/users/" + dave.username)  # carries every token: the worker has applied both posts

    assert stack.read.scan(FEED_BY_POST.name, {"post_id": int(starred)}) == []
    assert stack.read.get(FEED_PULLED_POSTS.name, {"author_id": int(star.id), "post_id": int(starred)})
    assert stack.durable(dave) == [pushed]  # the author is active: pushed
    assert pushed not in stack.durable(bob)  # skipped at write time...
    bucket_key = activity.missed_key(bucket_of(int(bob.id)))
    assert stack.redis.hexists(bucket_key, str(bob.id))  # ...and marked for a rebuild

    started = time.perf_counter()
    first = bob.ok("GET", "/v1/feed", params={"limit": 1})
    elapsed = time.perf_counter() - started
    print(f"\nscale: first page of a rebuilt feed in {elapsed * 1000:.0f} ms")
    assert [p["id"] for p in first["items"]] == [pushed]
    assert feed(bob, 1) == [pushed, starred]
    assert stack.durable(bob) == [pushed]  # the API wrote the rebuilt entry back to Cassandra
    assert stack.cached(bob) == [pushed]  # and into bob's cached feed
    assert feed(carol) == [starred]
    assert feed(star) == [starred]

    newer = post(dave, (10, 10, 10))  # bob reads again: pushed to him now
    dave.ok("GET", "/v1/users/" + dave.username)
    assert stack.durable(bob) == [newer, pushed]
    assert feed(bob, 2) == [newer, pushed, starred]

    star.ok("DELETE", f"/v1/posts/{starred}", 204)
    assert feed(bob) == [newer, pushed]
    assert feed(carol) == []
    assert stack.read.scan(FEED_PULLED_POSTS.name, {"author_id": int(star.id)}) == []

    metrics = bob.http.get("/metrics").text
    count = next(line for line in metrics.splitlines() if line.startswith("glimpse_feed_freshness_seconds_count"))
    assert int(count.split()[1]) >= 3
    print(metrics[metrics.index("glimpse_feed_freshness_seconds_bucket") :].splitlines()[:16])
