"""A replay of the hybrid feed leaves the per-user feeds empty (infra/replay.py,
`ColdCacheProjection`) and marks every reader, so each reader's first read after the
switch rebuilds their feed: every page must be the same as before the replay."""

from __future__ import annotations

from pathlib import Path

from infra.readmodel_digest import CACHE_TABLES, digests
from infra.replay_cli import replay_offline
from projections.feed import FEED
from tests.apphelpers import User, make_client
from tests.e2e.posts_support import all_pages, block, follow, make_private, png, unfollow, upload

# A small cap and rebuild depth: feeds are trimmed and rebuilt feeds have a horizon, so
# deep pages are merged from the timelines, before the replay and after it.
HYBRID = {"feed_strategy": "hybrid", "feed_celebrity_threshold": 3, "feed_fanout_cap": 4, "feed_rebuild_depth": 3}


def post(user: User, audience: str = "public") -> str:
    r = upload(user, png())
    assert r.status_code == 202, r.text
    r = user.post("/v1/posts", json={"caption": "", "media_ids": [r.json()["id"]], "audience": audience})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def pages(user: User, limit: int) -> list[str]:
    return all_pages(user, "/v1/feed", limit=limit)[0]


def test_every_feed_reads_the_same_after_a_replay_that_left_the_feeds_cold(tmp_path: Path) -> None:
    data = tmp_path / "data"
    client, container = make_client(data, **HYBRID)
    with client:
        star, a, b, c, d, e = (User(client) for _ in range(6))
        make_private(e)
        for fan in (a, b, c, d):
            follow(fan, star)  # star ends above the celebrity threshold: later posts are pulled
        follow(a, b)
        follow(a, e)
        follow(b, a)
        follow(c, a)
        follow(d, e)
        pages(a, 2)  # a and c read (active, pushed to); b and d never read before the posts
        pages(c, 2)
        for author, audience in [(b, "public"), (a, "followers"), (e, "followers"), (star, "public")] * 3:
            post(author, audience)
        gone = post(b)
        assert b.delete(f"/v1/posts/{gone}").status_code in (200, 204)
        unfollow(c, a)
        follow(c, b)
        block(d, e)
        users = (star, a, b, c, d, e)
        assert container.read.count(FEED.name, {"user_id": int(a.id)}) > 0
        before = {u.username: (pages(u, 2), pages(u, 100)) for u in users}
        live = digests(container.read)  # type: ignore[arg-type]
    container.close()

    report = replay_offline(container.settings, [], grace_seconds=0)
    assert "feed" in report.projections

    client, container = make_client(data, **HYBRID)
    with client:
        assert digests(container.read) == live  # type: ignore[arg-type]
        assert all(container.read.count(FEED.name, {"user_id": int(u.id)}) == 0 for u in users)  # cold
        for u in users:
            u.client = client
        after = {u.username: (pages(u, 2), pages(u, 100)) for u in users}
        assert after == before
        assert any(after[u.username][1] for u in users)
        assert container.read.count(FEED.name, {"user_id": int(a.id)}) > 0  # rebuilt by the first read
    container.close()
    assert {FEED.name} <= CACHE_TABLES
